"""Sandboxed Jinja2 for flows: compile, evaluate, render and statically inspect.

Bare expressions (``if``, ``expect``, ``when``, ``set`` values) and templates
(``say``, ``ask``, http strings, ...) run in one :class:`ImmutableSandboxedEnvironment`:
no underscore attributes, no mutation of scope data, bounded ``range``. A missing
``vars.order.id`` is a chainable undefined: it renders empty and is falsy.

Customer text is data, never template source: only strings written by flow authors
reach :func:`compile_expression` / :func:`compile_template`; values from the scope
are printed, never compiled, so a customer typing ``{{ 7*7 }}`` sees it echoed.

Secrets: the interpreter puts ``secret`` (built on :func:`secret_marker`) into the
scope of http and AI chain config only. ``secret('SHOP_TOKEN')`` renders as the
marker ``${secret:SHOP_TOKEN}``; activities replace markers (:data:`SECRET_MARKER_RE`)
with the real value right before the request, so secrets never enter workflow
history. While ``secret`` is in scope, a ``{{ }}`` value that *contains* a marker but
was not produced by ``secret()`` itself (e.g. customer text ``${secret:X}``, or
``'Bearer ' ~ secret('X')``) is refused, so data cannot smuggle a secret into a request.
"""

from __future__ import annotations

import contextlib
import math
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime
from functools import lru_cache
from typing import Any, TypeAlias

from jinja2 import Template, pass_context
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.runtime import ChainableUndefined, Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import ExpressionError

#: Plain JSON data, what workflow history can store.
JSON: TypeAlias = "bool | int | float | str | list[JSON] | dict[str, JSON] | None"

#: Names the interpreter may put into an expression's scope (functions included).
# fmt: off
SCOPE_NAMES = frozenset({
    "message", "answer", "contact", "conversation", "vars", "settings", "now", "ai", "http",
    "intent", "business_hours", "transcript", "secret",
})
# fmt: on
#: Longest string a result may hold (rendered text included).
MAX_STRING = 100_000
#: Bounds on a stored value: total nodes and nesting depth.
MAX_ITEMS = 100_000
MAX_DEPTH = 64
#: A secret reference as rendered into http/AI config; group 1 is the name.
_SECRET_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,127}"
SECRET_MARKER_RE = re.compile(r"\$\{secret:(" + _SECRET_NAME + r")\}")
CACHE_SIZE = 2048


class _SecretMarker(str):
    """A marker made by :func:`secret_marker`, distinguishable from look-alike data."""


def secret_marker(name: str) -> str:
    """Return ``${secret:NAME}``, the placeholder activities swap for the secret."""
    if not isinstance(name, str) or not re.fullmatch(_SECRET_NAME, name):
        raise ExpressionError(f"invalid secret name {name!r}: use letters, digits and '_'")
    return _SecretMarker(f"${{secret:{name}}}")


class _FlowEnvironment(ImmutableSandboxedEnvironment):
    # `**` and `*` can allocate or compute without bound (`10**10**10`, `'x' * 10**9`).
    intercepted_binops = frozenset({"**", "*"})

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        # The stock sandbox returns an undefined that only fails when *called*; with a
        # chainable undefined `''.__class__.__mro__` would then render silently as ''.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and abs(left).bit_length() * right > 64 * 1024:
                raise OverflowError("result of ** is too large")
        elif operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_STRING:
                    raise OverflowError("result of * is too large")
        return super().call_binop(context, operator, left, right)


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ExpressionError(f"invalid regular expression {pattern!r} for `matching`: {exc}") from None


def _test_matching(value: Any, pattern: Any) -> bool:
    """``value is matching('(?i)refund')``: a regex *search*; None/undefined never match."""
    if not isinstance(pattern, str):
        raise ExpressionError(f"`matching` needs a string pattern, got {type(pattern).__name__}")
    compiled = _regex(pattern)
    if value is None or isinstance(value, Undefined):
        return False
    return compiled.search(str(value)) is not None


def _filter_digits(value: Any) -> str:
    """Keep only the digits (full-width ones become ASCII): ``'１２3-45'`` -> ``'12345'``."""
    if value is None or isinstance(value, Undefined):
        return ""
    return "".join(str(unicodedata.decimal(c)) for c in str(value) if c.isdecimal())


def _filter_mask(value: Any, keep: int = 4) -> str:
    """Show the last ``keep`` characters only: ``'4111111111111111'`` -> ``'••••••••••••1111'``."""
    if value is None or isinstance(value, Undefined):
        return ""
    text = str(value)
    # Values no longer than `keep` are masked entirely: showing them would show all.
    shown = text[-keep:] if 0 < keep < len(text) else ""
    return "•" * (len(text) - len(shown)) + shown


@pass_context
def _finalize(context: Context, value: Any) -> Any:
    if context.get("secret") is None or isinstance(value, (_SecretMarker, Undefined)):
        return value
    if SECRET_MARKER_RE.search(value if isinstance(value, str) else str(value)):
        raise SecurityError(
            "a value contains a secret reference that secret() did not produce; "
            "write {{ secret('NAME') }} on its own and never print such data"
        )
    return value


ENV = _FlowEnvironment(undefined=ChainableUndefined, autoescape=False, keep_trailing_newline=False, finalize=_finalize)
ENV.tests["matching"] = _test_matching
ENV.filters["digits"] = _filter_digits
ENV.filters["mask"] = _filter_mask
# Workflows replay: anything random would make a replay diverge from history.
del ENV.filters["random"], ENV.globals["lipsum"]
BUILTIN_NAMES = frozenset(ENV.globals)


def syntax_failure(exc: TemplateSyntaxError, source: str, kind: str) -> ExpressionError:
    return ExpressionError(f"{kind} syntax error in {_show(source)}: {exc.message}", source=source, line=exc.lineno)


def _show(source: str) -> str:
    flat = " ".join(source.split())
    return repr(flat if len(flat) <= 80 else flat[:77] + "...")


@lru_cache(maxsize=CACHE_SIZE)
def compile_expression(source: str) -> Callable[..., Any]:
    """Compile a bare expression; call the result with the scope as keyword arguments."""
    try:
        return ENV.compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise syntax_failure(exc, source, "expression") from None


@lru_cache(maxsize=CACHE_SIZE)
def compile_template(source: str) -> Template:
    """Compile a template (``{{ }}`` values, ``{% %}`` logic)."""
    try:
        return ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise syntax_failure(exc, source, "template") from None


def _failed(kind: str, source: str, exc: Exception) -> ExpressionError:
    detail = str(exc) if isinstance(exc, (ExpressionError, SecurityError)) else f"{type(exc).__name__}: {exc}"
    return ExpressionError(f"{kind} {_show(source)} failed: {detail}", source=source)


def evaluate(source: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate a bare expression against ``scope``; the result is JSON-storable."""
    compiled = compile_expression(source)
    try:
        return to_json_value(compiled(dict(scope)))
    except Exception as exc:  # anything a sandboxed expression raises is the author's problem
        raise _failed("expression", source, exc) from exc


def render(source: str, scope: Mapping[str, Any]) -> str:
    """Render a template against ``scope``."""
    template = compile_template(source)
    try:
        text = template.render(dict(scope))
    except Exception as exc:
        raise _failed("template", source, exc) from exc
    if len(text) > MAX_STRING:
        raise ExpressionError(f"template {_show(source)} rendered more than {MAX_STRING} characters", source=source)
    return text


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` with every string in it (at any depth of dicts and lists) passed through ``change``."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [map_strings(v, change) for v in value]
    return value


def to_json_value(value: Any) -> JSON:
    """Convert an expression result to plain JSON data, or raise :class:`ExpressionError`."""
    return _json(value, [MAX_ITEMS], 0)


def _json(value: Any, budget: list[int], depth: int) -> JSON:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise ExpressionError("value is too large or too deeply nested to be stored")
    if value is None or isinstance(value, Undefined):
        return None
    if isinstance(value, int):  # bool included; int() drops subclasses such as IntEnum
        return bool(value) if isinstance(value, bool) else int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExpressionError(f"value {value} cannot be stored: not a finite number")
        return value
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise ExpressionError(f"string of {len(value)} characters is longer than {MAX_STRING}")
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {_key(k): _json(v, budget, depth + 1) for k, v in value.items()}
    if isinstance(value, AbstractSet):
        items = list(value)
        with contextlib.suppress(TypeError):  # set order follows hashing; sorted, replays agree
            items.sort()
        return [_json(v, budget, depth + 1) for v in items]
    if isinstance(value, (Sequence, Iterator)) and not isinstance(value, (bytes, bytearray)):
        # Iterators come from filters such as `map`/`select`; their results are lists.
        return [_json(v, budget, depth + 1) for v in value]
    raise ExpressionError(f"value of type {type(value).__name__} cannot be stored")


def _key(key: Any) -> str:
    if isinstance(key, str):
        return str(key)
    if key is None or isinstance(key, bool):  # spelled the way JSON spells them
        return "null" if key is None else str(key).lower()
    if isinstance(key, (int, float)):
        return str(key)
    raise ExpressionError(f"mapping key of type {type(key).__name__} cannot be stored")


def is_truthy(value: Any) -> bool:
    """Jinja truthiness: undefined, None, 0, '' and empty collections are false."""
    if isinstance(value, Undefined):
        return False
    try:
        return bool(value)
    except Exception as exc:
        raise ExpressionError(f"value of type {type(value).__name__} has no truth value: {exc}") from exc
