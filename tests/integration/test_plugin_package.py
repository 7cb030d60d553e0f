"""The example plugin package (examples/plugin) installed as a user would, and used by Flowdesk.

What a plugin author notices: after installing the package, `flowdesk validate`
and `flowdesk test` know its names (and do not without it: the entry points are
what makes them known); a worker on a real Temporal server delivers replies
through the plugin channel, routed by the plugin processor's flag and answered
by the plugin AI provider; and a broken plugin is reported by name while the
others still load.

The package is built and installed once per module with pip, offline, into a
temporary directory (never into the test environment). In-process tests put that
directory on ``sys.path`` with monkeypatch and put the process-global plugin
registries back as they were afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from engine.ai.registry import PROVIDERS
from engine.channels.registry import CHANNELS, build_channels
from engine.channels.testing import ChannelContract, HttpSendContract, ScriptedVendor, StaleSignatureContract
from engine.channels.types import Channel, OutboundMessage, WebhookChannel
from engine.flow.validate import compile_source
from engine.flow.vocabulary import (
    BUILTIN_CHANNELS,
    BUILTIN_PROCESSORS,
    BUILTIN_PROVIDERS,
    Vocabulary,
    installed,
)
from engine.pipeline.registry import PROCESSORS
from engine.plugins import PluginRegistry
from engine.runtime.client import Conversations
from engine.runtime.ports import JsonlMessageLog
from engine.runtime.revisions import FileRevisionStore, FlowCatalog
from engine.runtime.types import InboundMessage
from engine.runtime.worker import build_worker
from tests.integration.runtime_support import eventually

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "examples" / "plugin"
DEMO_FLOW = PLUGIN / "flows" / "plugin-demo.yaml"
#: The import package of the example; its modules are dropped from sys.modules after each test.
PACKAGE = "flowdesk_example"

SHIPPING_ANSWER = "Parcels leave our warehouse within 2 working days."
HELP_TEXT = "I can answer questions about shipping and returns, or look up an order (like #123456)."


# -- the package, installed ------------------------------------------------------------------


@pytest.fixture(scope="module", name="fx_plugin_site")
def fixture_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/plugin built and installed into a directory of its own, without network."""
    site = tmp_path_factory.mktemp("plugin-site")
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
    result = subprocess.run(
        [*command, "--target", str(site), str(PLUGIN)], capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, f"pip could not install examples/plugin:\n{result.stdout}\n{result.stderr}"
    return site


def _flowdesk(*args: str, path: list[Path]) -> subprocess.CompletedProcess[str]:
    """``python -m engine ARGS`` in examples/plugin (its flowdesk.yaml), with exactly ``path`` on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in path)}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=PLUGIN,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_installed_package_makes_its_names_known_to_validate_and_test(fx_plugin_site: Path) -> None:
    validate = _flowdesk("validate", "flows", path=[fx_plugin_site, REPO])
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "1 file checked: 0 errors, 0 warnings" in validate.stderr

    tested = _flowdesk("test", "--format", "json", "flows", path=[fx_plugin_site, REPO])
    assert tested.returncode == 0, tested.stdout + tested.stderr
    report = json.loads(tested.stdout)
    assert report["ok"] and report["failed"] == 0
    names = {t["name"] for t in report["tests"] if t["passed"]}
    # the flow's own tests, including those that only pass when the processor flags the message
    assert "an order number with a hash sign is routed to order tracking" in names
    assert "a Chinese order number is found too" in names
    assert report["passed"] == len(report["tests"]) >= 4


def test_without_the_package_validate_reports_each_plugin_name_as_unknown() -> None:
    # The proof only holds if this environment does not have the package installed itself.
    assert "order_numbers" not in installed("flowdesk.processors"), (
        "flowdesk-example-plugins is installed in the test environment (pip uninstall flowdesk-example-plugins); "
        "this test needs Flowdesk without it"
    )
    result = _flowdesk("validate", "flows", path=[REPO])
    assert result.returncode == 1
    out = result.stdout
    assert "FD205 error: channel 'outbox' is not known" in out
    assert "FD204 error: processor 'order_numbers' is not known" in out
    assert "FD203 error: AI provider 'canned' of chain 'answers' is not known" in out


# -- in process: the registries see the package ---------------------------------------------------

_REGISTRIES: tuple[PluginRegistry[Any], ...] = (PROCESSORS, PROVIDERS, CHANNELS)


@pytest.fixture(name="fx_plugins")
def fixture_plugins(fx_plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The package on sys.path for one test; registries and sys.modules restored afterwards."""
    saved = [(registry, dict(registry._loaded), dict(registry._registered)) for registry in _REGISTRIES]
    modules = set(sys.modules)
    monkeypatch.syspath_prepend(str(fx_plugin_site))
    yield fx_plugin_site
    for registry, loaded, registered in saved:
        registry._loaded.clear()
        registry._loaded.update(loaded)
        registry._registered.clear()
        registry._registered.update(registered)
    # The plugins (and the broken fakes) must not stay importable from a path that is gone.
    for name in set(sys.modules) - modules:
        if name == PACKAGE or name.startswith((f"{PACKAGE}.", "broken_plugin_")):
            del sys.modules[name]


def _vocabulary() -> Vocabulary:
    """What DEFAULT_VOCABULARY would be in a process started with the package installed."""
    return Vocabulary(
        channels=BUILTIN_CHANNELS | installed("flowdesk.channels"),
        providers=BUILTIN_PROVIDERS | installed("flowdesk.ai"),
        processors=BUILTIN_PROCESSORS | installed("flowdesk.processors"),
    )


def _outbox_lines(path: Path, conversation_id: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [line for line in lines if line["conversation_id"] == conversation_id]


def _outbox_holds(path: Path, conversation_id: str, count: int) -> Callable[[], bool]:
    return lambda: len(_outbox_lines(path, conversation_id)) >= count


async def test_a_worker_delivers_through_the_plugin_channel_routed_and_answered_by_the_plugins(
    fx_plugins: Path, fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    compiled = compile_source(DEMO_FLOW.read_text(encoding="utf-8"), str(DEMO_FLOW), vocabulary=_vocabulary())
    assert compiled.flow is not None, [d.format() for d in compiled.diagnostics]
    catalog = FlowCatalog(FileRevisionStore(tmp_path / "revisions"))
    catalog.publish(compiled.flow)
    outbox = tmp_path / "outbox.jsonl"
    log = JsonlMessageLog(tmp_path / "messages")
    # The worker finds the outbox channel through its entry point; the registry builds it.
    channels = build_channels({"outbox": {"path": str(outbox), "secret": SECRET}})
    worker = build_worker(fx_dev_env.client, catalog, task_queue=fx_task_queue, message_log=log, channels=channels)
    conversations = Conversations(fx_dev_env.client, catalog, task_queue=fx_task_queue)
    conv = f"plugin-{uuid4().hex}"
    # The channel's own verify and decode turn its signed webhooks into messages.
    channel = channels["outbox"]
    assert isinstance(channel, WebhookChannel)
    payloads = [
        {"id": f"in-{uuid4()}", "text": "  Where is   my order #123456 ?", "from": "ana@example.com"},
        {"id": f"in-{uuid4()}", "text": "How long does SHIPPING take?", "from": "ana@example.com"},
        {"id": f"in-{uuid4()}", "text": "Can I pay by card?", "from": "ana@example.com"},
    ]
    async with worker:
        try:
            for count, payload in enumerate(payloads, start=1):
                request = OutboxContract().signed(json.dumps(payload).encode())
                channel.verify(request)
                (message,) = channel.decode(request)
                inbound = InboundMessage(
                    id=message.message_id, text=message.text, channel="outbox", meta={"from": message.sender}
                )
                await conversations.send(conv, inbound)
                # One at a time: each reply answers the message before it.
                await eventually(_outbox_holds(outbox, conv, count), f"reply {count} in the outbox")
        finally:
            # The dev server is shared by the session: leave no conversation running.
            with contextlib.suppress(RPCError):
                await conversations.handle(conv).terminate("test finished")
    lines = _outbox_lines(outbox, conv)

    assert [line["text"] for line in lines] == [
        "Order 123456: I'm looking it up for you.",  # the processor's flag took the order branch
        SHIPPING_ANSWER,  # the canned provider's answer, from the flow's params
        HELP_TEXT,  # no keyword: the provider declined and the step took on_error
    ]
    assert len({line["key"] for line in lines}) == 3
    # the answer on record came from the plugin provider, not from a mock or a fallback
    replies = sorted(log.entries(conv), key=lambda e: e.at)
    answered = [e for e in replies if e.direction == "out" and e.text == SHIPPING_ANSWER]
    assert answered and answered[0].meta["ai"]["provider"] == "canned"
    # the inbound pipeline's normalize stage ran before the processor: the log keeps the text as the flow saw it
    assert "Where is my order #123456 ?" in [e.text for e in replies if e.direction == "in"]


async def test_the_outbox_writes_a_key_once_even_after_a_restart(fx_plugins: Path, tmp_path: Path) -> None:
    settings = {"outbox": {"path": str(tmp_path / "out" / "outbox.jsonl"), "secret": SECRET}}
    reply = OutboundMessage(conversation_id="c-1", key="c-1:1", text="Hello", contact={"id": "ana"})
    first = build_channels(settings)["outbox"]
    assert (await first.send(reply)).status == "sent"
    assert (await first.send(reply)).status == "duplicate"
    restarted = build_channels(settings)["outbox"]  # a new worker over the same file
    assert (await restarted.send(reply)).status == "duplicate"
    lines = (tmp_path / "out" / "outbox.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["text"] for line in lines] == ["Hello"]
    assert json.loads(lines[0])["contact"] == {"id": "ana"}


def test_the_outbox_without_its_path_is_left_out_and_says_why(
    fx_plugins: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="engine.channels.registry")
    assert "outbox" not in build_channels({})
    assert "channel 'outbox' failed to start: ValueError: channels.outbox.path is missing" in caplog.text


def test_the_outbox_without_a_secret_is_left_out_and_says_why(
    fx_plugins: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="engine.channels.registry")
    assert "outbox" not in build_channels({"outbox": {"path": str(tmp_path / "o.jsonl")}})
    assert "channels.outbox.secret is missing" in caplog.text


# -- the channel contract, on the example channel -------------------------------------------------

SECRET = "outbox-test-secret-0123456789"
FIXTURES = REPO / "tests" / "fixtures" / "channels" / "outbox"


def _signature(secret: str, stamp: str, body: bytes) -> str:
    # Written out again (not imported from the plugin): the test checks the documented scheme.
    return "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@pytest.mark.usefixtures("fx_plugins")
class OutboxContract(ChannelContract, StaleSignatureContract, HttpSendContract):
    """The example channel passes what every channel passes (fixtures: tests/fixtures/channels/outbox)."""

    kind = "outbox"
    fixtures = FIXTURES
    replay_window = 300.0
    root: Path

    @pytest.fixture(autouse=True)
    def _root(self, tmp_path: Path) -> None:
        self.root = tmp_path

    async def make_channel(self, api_base: str | None = None) -> Channel:
        params: dict[str, Any] = {"path": str(self.root / "outbox.jsonl"), "secret": SECRET}
        if api_base is not None:
            params["callback_url"] = f"{api_base}/flowdesk/replies"
        return build_channels({"outbox": params})["outbox"]

    async def make_webhook_channel(self) -> WebhookChannel:
        channel = await self.make_channel()
        assert isinstance(channel, WebhookChannel)
        return channel

    async def received(self, channel: Channel, recipient: str) -> list[str]:
        lines = _outbox_lines(self.root / "outbox.jsonl", "conv-contract")
        return [line["text"] + "".join(f"\n{c}" for c in line["choices"]) for line in lines]

    def sign(self, body: bytes, *, at: float, path: str = "/") -> dict[str, str]:
        stamp = str(int(at))
        return {"X-Outbox-Timestamp": stamp, "X-Outbox-Signature": _signature(SECRET, stamp, body)}

    def forge(self, body: bytes, *, at: float) -> dict[str, str]:
        stamp = str(int(at))
        return {"X-Outbox-Timestamp": stamp, "X-Outbox-Signature": _signature("another-secret-of-someone", stamp, body)}


class TestOutboxContract(OutboxContract):
    pass


async def test_a_callback_carries_a_signature_the_receiver_can_check(fx_plugins: Path, tmp_path: Path) -> None:
    async with ScriptedVendor() as vendor:
        params = {"path": str(tmp_path / "o.jsonl"), "secret": SECRET, "callback_url": f"{vendor.url}/in"}
        channel = build_channels({"outbox": params})["outbox"]
        await channel.send(OutboundMessage(conversation_id="c-9", key="c-9:1", text="Shipped", contact={"id": "ana"}))
    (seen,) = vendor.requests
    assert seen.path == "/in" and seen.json()["text"] == "Shipped"
    stamp = seen.headers["x-outbox-timestamp"]
    assert seen.headers["x-outbox-signature"] == _signature(SECRET, stamp, seen.body)


# -- broken plugins ------------------------------------------------------------------------------


def _broken_distribution(root: Path, group: str) -> str:
    """A fake installed distribution whose one ``group`` entry point fails to import; returns its name."""
    suffix = uuid4().hex[:8]
    name, module = f"broken_{suffix}", f"broken_plugin_{suffix}"
    info = root / f"broken-plugin-{suffix}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: broken-plugin-{suffix}\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {module}:Plugin\n", encoding="utf-8")
    (root / f"{module}.py").write_text('raise RuntimeError("this plugin is broken on purpose")\n', encoding="utf-8")
    return name


def test_a_broken_processor_is_reported_by_name_and_the_others_still_load(
    fx_plugins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = _broken_distribution(tmp_path, "flowdesk.processors")
    monkeypatch.syspath_prepend(str(tmp_path))
    failures = PROCESSORS.load_all()
    assert list(failures) == [broken]
    assert "broken on purpose" in str(failures[broken]) and "RuntimeError" in str(failures[broken])
    assert PROCESSORS.resolve("order_numbers").__name__ == "OrderNumbers"
    assert {"normalize", "order_numbers", broken} <= PROCESSORS.names()


def test_a_broken_channel_is_logged_by_name_and_the_others_still_load(
    fx_plugins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken = _broken_distribution(tmp_path / "site", "flowdesk.channels")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    caplog.set_level(logging.WARNING)
    channels = build_channels({"outbox": {"path": str(tmp_path / "outbox.jsonl"), "secret": SECRET}})
    assert "outbox" in channels and broken not in channels
    assert channels["outbox"].name == "outbox"
    errors = [r.getMessage() for r in caplog.records if r.name == "engine.channels.registry"]
    assert len(errors) == 1
    assert f"channel {broken!r} failed to load" in errors[0] and "RuntimeError: this plugin is broken" in errors[0]


def test_the_package_is_on_the_path_only_inside_the_fixture() -> None:
    """Runs after the tests above (file order): nothing of the plugins is left in this process."""
    assert "order_numbers" not in {point.name for point in entry_points(group="flowdesk.processors")}
    assert "order_numbers" not in PROCESSORS._loaded and "outbox" not in CHANNELS._loaded
    assert not any(name == PACKAGE or name.startswith(f"{PACKAGE}.") for name in sys.modules)
