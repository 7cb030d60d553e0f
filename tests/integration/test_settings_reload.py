"""Live settings: a flowdesk.yaml edit reaches conversations without a restart; a broken one changes nothing."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.integration.runtime_support import eventually
from tests.integration.server_support import chat, running_node

BRAND_FLOW = """
flow: brand
channels: [webchat]
steps:
  listen:
    wait: message
  reply:
    say: "{{ settings.brand }} says {{ settings.greeting }}: {{ message.text }}"
    next: listen
"""

SETTINGS = """\
brand: Acme
values:
  greeting: hello
"""


async def test_a_settings_edit_reaches_running_and_new_conversations(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with (
        running_node(fx_dev_env, tmp_path, flows={"brand.yaml": BRAND_FLOW}, settings_file=SETTINGS) as node,
        node.api() as api,
        chat(node) as visitor,
    ):
        settings_file = tmp_path / "flowdesk.yaml"
        first = (await api.get("/api/settings")).json()
        assert first["status"] == "ok" and first["settings"]["brand"] == "Acme" and first["file"] == str(settings_file)
        assert len(first["revision"]) == 64
        await visitor.say("one")
        await visitor.reply_to("Acme says hello: one")

        # A valid edit, saved as editors do: a temporary file renamed over the original.
        temporary = tmp_path / ".flowdesk.yaml.swp"
        temporary.write_text(SETTINGS.replace("Acme", "Beta").replace("hello", "hi"))
        temporary.replace(settings_file)

        async def revision() -> str | None:
            now = (await api.get("/api/settings")).json()
            return now["revision"] if now["revision"] != first["revision"] else None

        second = await eventually(revision, "the settings edit to go live", timeout=5)
        # The conversation waited for a message (a safe point): it moved to the new settings.
        await visitor.say("two")
        await visitor.reply_to("Beta says hi: two")
        # The stored revision is what a worker elsewhere would load.
        assert node.node.store is not None
        assert node.node.store.settings_data(second) == {"brand": "Beta", "values": {"greeting": "hi"}}

        # A broken edit: the last good settings stay live, and the API says where and why.
        settings_file.write_text(SETTINGS.replace("greeting: hello", "greeting: [unclosed"))

        async def refused() -> list[dict[str, object]] | None:
            now = (await api.get("/api/settings")).json()
            return now["errors"] if now["status"] == "error" else None

        errors = await eventually(refused, "the broken edit to be reported", timeout=5)
        assert errors[0]["file"] == str(settings_file) and errors[0]["line"] == 3, errors
        assert (await api.get("/api/settings")).json()["revision"] == second
        await visitor.say("three")
        await visitor.reply_to("Beta says hi: three")
        metrics = (await api.get("/metrics")).text
        assert 'flowdesk_settings_reloads_total{outcome="failed"}' in metrics
        assert "flowdesk_settings_file_invalid 1.0" in metrics

        # Fixed, and picked up by SIGHUP too (the watcher would see it as well).
        settings_file.write_text(SETTINGS.replace("Acme", "Gamma"))
        os.kill(os.getpid(), signal.SIGHUP)

        async def fixed() -> str | None:
            now = (await api.get("/api/settings")).json()
            return now["revision"] if now["status"] == "ok" and now["settings"]["brand"] == "Gamma" else None

        await eventually(fixed, "the fix to go live", timeout=5)
        await visitor.say("four")
        await visitor.reply_to("Gamma says hello: four")
        assert "flowdesk_settings_file_invalid 0.0" in (await api.get("/metrics")).text


async def test_the_settings_view_never_shows_a_secret(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    settings = SETTINGS + 'ai_profiles:\n  default: { provider: openai, api_key: "${env:SECRET_KEY}" }\n'
    async with (
        running_node(fx_dev_env, tmp_path, flows={"brand.yaml": BRAND_FLOW}, settings_file=settings) as node,
        node.api() as api,
    ):
        body = (await api.get("/api/settings")).text
        assert "SECRET_KEY" not in body and "ai_profiles" not in body
        assert (await node.api(token="wrong").get("/api/settings")).status_code == 401
