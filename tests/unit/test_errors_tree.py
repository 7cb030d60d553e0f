"""Every exception class of engine and connectors is a FlowdeskError, drawn in engine/errors.py; their HTTP statuses."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from types import ModuleType
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.exceptions import HTTPException
from litestar.testing import TestClient

import connectors
import engine
from engine import errors
from engine.errors import ConfigError, Diagnostic, FlowdeskError, FlowError, Severity
from engine.runtime.client import ConversationEnded
from engine.server.problems import (
    DOMAIN_STATUSES,
    MEDIA_TYPE,
    TITLES,
    Problem,
    handle_http_exception,
    handle_unexpected,
)
from engine.store.tokens import TokenNameTaken

#: Exception classes that cannot be FlowdeskErrors. ``Problem`` must be Litestar's
#: ``HTTPException`` for Litestar to answer it with its status: it is how the server
#: speaks HTTP about an error, not an error of Flowdesk's domain.
FRAMEWORK_BASES: frozenset[type[BaseException]] = frozenset({Problem})

#: One drawn line: the tree's rails (4 characters a level), then the class name.
_DRAWN = re.compile(r"^(?P<rails>(?:[│ ]   )*(?:[├└]── )?)(?P<name>[A-Za-z_]\w*)(?:\s|$)")


def _all_modules() -> list[ModuleType]:
    modules = []
    for package in (engine, connectors):
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            modules.append(importlib.import_module(info.name))
    return modules


def _exceptions_defined_here() -> list[type[BaseException]]:
    found = []
    for module in _all_modules():
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def _subclasses(cls: type[BaseException]) -> list[type[BaseException]]:
    every = []
    for sub in cls.__subclasses__():
        every += [sub, *_subclasses(sub)]
    return every


def _drawing() -> dict[str, str | None]:
    """Each class drawn in engine/errors.py's docstring -> the class drawn as its parent."""
    doc = errors.__doc__ or ""
    block = doc.split("::", 1)[1].split("\n\n", 2)[1]
    lines = block.splitlines()
    margin = len(lines[0]) - len(lines[0].lstrip())
    parents: dict[str, str | None] = {}
    path: list[str] = []
    for line in lines:
        match = _DRAWN.match(line[margin:])
        assert match is not None, f"not a line of the tree: {line!r}"
        depth = len(match["rails"]) // 4
        name = match["name"]
        assert name not in parents, f"{name} is drawn twice"
        del path[depth:]
        parents[name] = path[-1] if path else None
        path.append(name)
    return parents


@pytest.fixture(name="fx_exceptions", scope="module")
def fixture_exceptions() -> list[type[BaseException]]:
    return _exceptions_defined_here()


def test_every_exception_class_is_a_flowdesk_error(fx_exceptions: list[type[BaseException]]) -> None:
    outside = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in fx_exceptions
        if not issubclass(cls, FlowdeskError) and cls not in FRAMEWORK_BASES
    ]
    assert not outside, f"not under FlowdeskError (engine/errors.py): {', '.join(sorted(outside))}"


def test_the_drawing_shows_every_flowdesk_error_under_its_parent(fx_exceptions: list[type[BaseException]]) -> None:
    assert fx_exceptions  # the modules were imported, so every subclass is known
    drawn = _drawing()
    real = {cls.__name__: cls for cls in [FlowdeskError, *_subclasses(FlowdeskError)] if _is_ours(cls)}
    missing = sorted(f"{cls.__module__}.{name}" for name, cls in real.items() if name not in drawn)
    assert not missing, f"draw these in engine/errors.py's docstring: {', '.join(missing)}"
    stale = sorted(set(drawn) - set(real))
    assert not stale, f"drawn in engine/errors.py but not defined: {', '.join(stale)}"
    misplaced = [
        f"{name} is drawn under {drawn[name]}, but its base is {real[name].__base__.__name__}"
        for name in real
        if name != "FlowdeskError" and drawn[name] != real[name].__base__.__name__
    ]
    assert not misplaced, "; ".join(misplaced)


def _is_ours(cls: type[BaseException]) -> bool:
    # Tests define FlowdeskErrors of their own (fakes, plugins): only the shipped code's are drawn.
    return cls.__module__.split(".")[0] in ("engine", "connectors")


def _answer(exc: Exception) -> tuple[int, dict[str, Any]]:
    """What a client gets when a handler fails with ``exc``, with the handlers the server registers."""

    @get("/")
    async def fail() -> None:
        raise exc

    app = Litestar([fail], exception_handlers={HTTPException: handle_http_exception, Exception: handle_unexpected})
    with TestClient(app) as client:
        response = client.get("/")
    assert response.headers["content-type"] == MEDIA_TYPE
    return response.status_code, response.json()


def test_a_domain_error_the_request_caused_is_answered_with_its_status() -> None:
    status, body = _answer(ConversationEnded("conversation c1 has ended"))
    assert (status, body["title"], body["detail"]) == (409, "Conflict", "conversation c1 has ended")
    # the most specific class listed wins: a taken token name is a conflict, not a settings error
    assert _answer(TokenNameTaken("a token named ci exists"))[0] == 409


def test_a_flow_error_carries_its_diagnostics() -> None:
    problem = Diagnostic("FD201", Severity.ERROR, "unknown step 'x'", "", "f.yaml", 3, 5)
    status, body = _answer(FlowError([problem]))
    assert status == 422 and body["diagnostics"] == [problem.to_dict()]


def test_the_servers_own_trouble_stays_a_500_naming_no_internals() -> None:
    status, body = _answer(ConfigError("environment variable SHOP_DB_URL is not set"))
    assert status == 500 and "SHOP_DB_URL" not in body["detail"]


def test_every_mapped_status_has_a_title() -> None:
    assert set(DOMAIN_STATUSES.values()) <= set(TITLES)
