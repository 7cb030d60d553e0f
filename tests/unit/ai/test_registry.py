"""AI providers by name: the decorator, `module:attr`, `flowdesk.ai` entry points, and clear errors."""

from __future__ import annotations

import re
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.ai.dify import DifyProvider
from connectors.ai.echo import EchoProvider
from engine.ai.registry import PROVIDERS, build_provider, register_provider
from engine.ai.types import AIReply, AIRequest, ProviderConfigError
from engine.errors import PluginError
from engine.flow.vocabulary import installed

DOCS = Path(__file__).resolve().parents[3] / "docs" / "flows.md"

PROVIDER_MODULE = """
from engine.ai.types import AIReply


class Shouty:
    def __init__(self, params):
        self.params = dict(params)

    async def reply(self, request):
        return AIReply(text=request.message.upper(), confidence=1.0)


def create(params):
    return Shouty(params)
"""


@pytest.fixture(autouse=True)
def _restore_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry is process-wide: every registration made here is undone after the test."""
    monkeypatch.setattr(PROVIDERS, "_registered", dict(PROVIDERS._registered))
    monkeypatch.setattr(PROVIDERS, "_loaded", dict(PROVIDERS._loaded))


@pytest.fixture(name="plugins")
def fx_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, str]], None]]:
    """Write files under a fresh directory, then put it on sys.path (as an installed package would be)."""

    def install(files: dict[str, str]) -> None:
        for name, text in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        monkeypatch.syspath_prepend(str(tmp_path))

    yield install
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def distribution(name: str, entry_points: dict[str, str]) -> dict[str, str]:
    """The files of an installed distribution publishing ``entry_points`` in the ``flowdesk.ai`` group."""
    info = f"{name}-0.1.dist-info"
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    return {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
        f"{info}/entry_points.txt": f"[flowdesk.ai]\n{lines}",
    }


def docs_snippet() -> str:
    """The Python example of the "AI chains" section of docs/flows.md."""
    section = DOCS.read_text(encoding="utf-8").split("\n## AI chains\n", 1)[1].split("\n## ", 1)[0]
    blocks: list[str] = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    [snippet] = [block for block in blocks if "register_provider" in block]
    return snippet


# -- the decorator -------------------------------------------------------------------


def test_the_documented_three_line_provider_works() -> None:
    snippet = docs_snippet()
    namespace: dict[str, Any] = {}

    exec(compile(snippet, str(DOCS), "exec"), namespace)

    provider = build_provider("dify_custom", {"api_key": "app-test-key", "base_url": "https://api.dify.ai/v1"})
    assert isinstance(provider, DifyProvider)
    assert provider.endpoint == "https://dify.internal/v1/chat-messages"
    assert "dify_custom" in PROVIDERS.names()


def test_register_provider_makes_build_provider_use_the_factory() -> None:
    name = unique("custom")
    seen: list[dict[str, Any]] = []

    @register_provider(name)
    def factory(params: Any) -> EchoProvider:
        seen.append(dict(params))
        return EchoProvider({"prefix": "custom: "})

    provider = build_provider(name, {"model": "m1"})

    assert isinstance(provider, EchoProvider)
    assert provider.prefix == "custom: "
    assert seen == [{"model": "m1"}]
    assert callable(factory)  # the decorator gives the function back


def test_a_registration_overrides_a_builtin_of_the_same_name() -> None:
    @register_provider("echo")
    def loud_echo(params: Any) -> EchoProvider:
        return EchoProvider({"prefix": "LOUD "})

    provider = build_provider("echo", {})

    assert isinstance(provider, EchoProvider) and provider.prefix == "LOUD "


async def test_builtins_build_by_name() -> None:
    provider = build_provider("echo", {"prefix": "> "})

    reply = await provider.reply(AIRequest(message="hello"))

    assert reply.text == "> hello"


# -- module:attr ---------------------------------------------------------------------


async def test_a_module_attr_reference_resolves(plugins: Callable[[dict[str, str]], None]) -> None:
    module = unique("fd_ref_plugin")
    plugins({f"{module}.py": PROVIDER_MODULE})

    provider = build_provider(f"{module}:create", {"tone": "loud"})

    assert type(provider).__name__ == "Shouty"
    assert provider.params == {"tone": "loud"}  # type: ignore[attr-defined]
    reply = await provider.reply(AIRequest(message="where is my parcel"))
    assert reply.text == "WHERE IS MY PARCEL"


def test_a_reference_to_a_missing_module_or_attribute_is_a_config_error(
    plugins: Callable[[dict[str, str]], None],
) -> None:
    module = unique("fd_ref_plugin")
    plugins({f"{module}.py": PROVIDER_MODULE})
    missing = unique("fd_no_such_module")

    with pytest.raises(ProviderConfigError, match=missing):
        build_provider(f"{missing}:create", {})
    with pytest.raises(ProviderConfigError, match=r"no attribute 'nothing_here'"):
        build_provider(f"{module}:nothing_here", {})


# -- entry points --------------------------------------------------------------------


async def test_an_entry_point_in_the_flowdesk_ai_group_is_found(plugins: Callable[[dict[str, str]], None]) -> None:
    name, module = unique("shouty"), unique("fd_ep_plugin")
    plugins({**distribution(unique("fd-dist"), {name: f"{module}:create"}), f"{module}.py": PROVIDER_MODULE})

    assert name in PROVIDERS.names()
    assert name in installed("flowdesk.ai")  # what flow validation accepts as `use:`
    provider = build_provider(name, {})
    reply = await provider.reply(AIRequest(message="hi there"))
    assert reply.text == "HI THERE"


def test_a_broken_plugin_is_reported_by_name_and_the_others_still_load(
    plugins: Callable[[dict[str, str]], None],
) -> None:
    good, broken = unique("good"), unique("broken")
    good_module, broken_module = unique("fd_good"), unique("fd_broken")
    plugins(
        {
            **distribution(unique("fd-dist"), {good: f"{good_module}:create", broken: f"{broken_module}:create"}),
            f"{good_module}.py": PROVIDER_MODULE,
            f"{broken_module}.py": 'raise ImportError("vendor_sdk 2.x is required")\n',
        }
    )

    failures = PROVIDERS.load_all()

    assert list(failures) == [broken]
    message = str(failures[broken])
    assert isinstance(failures[broken], PluginError)
    assert broken in message
    assert "ImportError: vendor_sdk 2.x is required" in message
    assert type(build_provider(good, {})).__name__ == "Shouty"
    with pytest.raises(ProviderConfigError) as caught:
        build_provider(broken, {})
    assert broken in str(caught.value)
    assert "vendor_sdk 2.x is required" in str(caught.value)


# -- clear errors --------------------------------------------------------------------


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ProviderConfigError) as caught:
        build_provider("openia", {})

    message = str(caught.value)
    assert "'openia'" in message
    for known in ("openai", "anthropic", "dify", "fastgpt", "coze", "faq", "echo"):
        assert known in message
    assert caught.value.outcome == "misconfigured"


def test_a_factory_returning_a_non_provider_is_rejected() -> None:
    name = unique("not_a_provider")
    register_provider(name)(lambda params: {"text": "hello"})  # type: ignore[arg-type, return-value]

    with pytest.raises(ProviderConfigError, match=rf"{name}.*returned a dict, not a provider"):
        build_provider(name, {})


def test_a_registered_non_callable_is_rejected() -> None:
    name = unique("not_callable")
    register_provider(name)("connectors.ai.echo:create")  # type: ignore[arg-type]

    with pytest.raises(ProviderConfigError, match=rf"{name}.*not a factory"):
        build_provider(name, {})


def test_a_factory_rejecting_its_configuration_is_a_config_error() -> None:
    name = unique("picky")

    @register_provider(name)
    def picky(params: Any) -> EchoProvider:
        raise ValueError(f"temperature must be a number, got {params['temperature']!r}")

    with pytest.raises(ProviderConfigError, match=rf"{name}.*temperature must be a number"):
        build_provider(name, {"temperature": "hot"})


def test_the_dify_provider_without_a_key_is_misconfigured() -> None:
    with pytest.raises(ProviderConfigError, match="api_key"):
        build_provider("dify", {"base_url": "https://dify.internal/v1"})


def test_fake_providers_satisfy_the_protocol() -> None:
    class Minimal:
        async def reply(self, request: AIRequest) -> AIReply:
            return AIReply(text="ok")

    name = unique("minimal")
    register_provider(name)(lambda params: Minimal())

    assert isinstance(build_provider(name, {}), Minimal)
