"""AI fallback chains in running conversations: real Temporal, vendors emulated on local sockets.

What a customer and an operator notice: an answer still comes (from the offline FAQ)
when the vendors in front of it fail or hang, within the chain's time; when every
provider fails the customer is handed to a human and nothing is lost; the attempts
are on the record; and the vendors' keys appear nowhere Flowdesk writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from temporalio.testing import WorkflowEnvironment

from engine.runtime.client import Conversations
from engine.runtime.revisions import FileRevisionStore, FlowCatalog
from engine.runtime.types import InboundMessage
from engine.runtime.worker import build_worker
from engine.store import Store
from engine.store.tables import Message
from tests.integration.runtime_support import (
    CHANNEL,
    CollectingChannel,
    compile_flow,
    eventually,
    history_text,
    running_conversations,
)
from tests.vendors.anthropic import AnthropicEmulator
from tests.vendors.dify import DifyEmulator

KNOWLEDGE = """
entries:
  - question: How long does shipping take?
    keywords: [shipping, delivery]
    answer: Shipping takes 3 to 5 working days.
"""

#: [failing vendor (retried once), slow vendor, faq] within a 4 s chain.
CHAIN_FLOW = """
flow: chain
ai:
  helpdesk:
    system: You are the support assistant of a shop.
    providers:
      - { use: dify, profile: kb, retries: 1 }
      - { use: anthropic, profile: claude, timeout: 300ms }
      - { use: faq, knowledge: kb.yaml }
    min_confidence: 0.4
    timeout: 4s
steps:
  listen:
    wait: message
  answer:
    ai: helpdesk
    on_error: human
    next: listen
  human:
    say: Connecting you to a colleague.
    handoff: { queue: tier1, timeout: 10m }
    next: listen
"""


def _profiles(dify: DifyEmulator, claude: AnthropicEmulator) -> dict[str, dict[str, str]]:
    return {
        "kb": {"provider": "dify", "base_url": dify.url, "api_key": "${env:DIFY_KEY}"},
        "claude": {
            "provider": "anthropic",
            "base_url": claude.url,
            "api_key": "${env:CLAUDE_KEY}",
            "model": "claude-test",
        },
    }


@pytest.fixture(name="fx_vendors")
def fixture_vendors() -> Iterator[tuple[DifyEmulator, AnthropicEmulator]]:
    with DifyEmulator() as dify, AnthropicEmulator(delay=5.0) as claude:
        yield dify, claude


def _knowledge(tmp_path: Path) -> Path:
    (tmp_path / "kb.yaml").write_text(KNOWLEDGE, encoding="utf-8")
    return tmp_path


async def test_a_failing_and_a_hanging_vendor_fall_through_to_the_faq_within_the_chain_timeout(
    fx_dev_env: WorkflowEnvironment,
    fx_task_queue: str,
    tmp_path: Path,
    fx_vendors: tuple[DifyEmulator, AnthropicEmulator],
) -> None:
    dify, claude = fx_vendors
    dify.mode, claude.mode = "server_error", "timeout"
    keys = {"DIFY_KEY": f"app-{uuid4().hex}", "CLAUDE_KEY": f"sk-ant-{uuid4().hex}"}
    conv = f"ai-{uuid4().hex}"
    async with running_conversations(
        fx_dev_env.client,
        fx_task_queue,
        tmp_path,
        [CHAIN_FLOW],
        secrets=keys.get,
        ai_profiles=_profiles(dify, claude),
        knowledge_dir=_knowledge(tmp_path),
    ) as rt:
        sent = time.monotonic()
        await rt.send(conv, "How long does shipping take to Berlin?")
        assert await rt.channel.wait_texts(conv, 1) == ["Shipping takes 3 to 5 working days."]
        assert time.monotonic() - sent < 4.0  # the chain's timeout; the hanging vendor was cut at 300 ms

        # both vendors were really asked, with their keys: the failing one twice (retries: 1)
        assert len(dify.requests) == 2
        assert {r.headers["authorization"] for r in dify.requests} == {f"Bearer {keys['DIFY_KEY']}"}
        assert [r.headers["x-api-key"] for r in claude.requests] == [keys["CLAUDE_KEY"]]
        assert claude.requests[0].json["system"] == "You are the support assistant of a shop."

        # the answer is logged with the provider that gave it and every attempt, in order
        (reply,) = await rt.wait_entries(conv, "out", 1)
        ai = reply.meta["ai"]
        assert ai["provider"] == "faq"
        assert [(a["provider"], a["outcome"]) for a in ai["attempts"]] == [
            ("dify/kb", "unavailable"),
            ("dify/kb", "unavailable"),
            ("anthropic/claude", "timeout"),
            ("faq", "ok"),
        ]
        state = await rt.step(conv)
        assert state["step"] == "listen"


async def test_when_every_provider_fails_the_customer_gets_a_human_and_no_key_leaks(
    fx_dev_env: WorkflowEnvironment,
    fx_task_queue: str,
    tmp_path: Path,
    fx_vendors: tuple[DifyEmulator, AnthropicEmulator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """401 (whose body echoes the key, as some vendors' do), 500, and a FAQ that declines."""
    caplog.set_level(logging.DEBUG)
    dify, claude = fx_vendors
    dify.mode, claude.mode = "unauthorized", "server_error"
    keys = {"DIFY_KEY": f"app-{uuid4().hex}", "CLAUDE_KEY": f"sk-ant-{uuid4().hex}"}
    conv = f"ai-{uuid4().hex}"
    store = Store(f"sqlite:///{tmp_path / 'flowdesk.db'}")
    await asyncio.to_thread(store.upgrade)
    catalog = FlowCatalog(FileRevisionStore(tmp_path / "revisions"))
    catalog.publish(compile_flow(CHAIN_FLOW))
    channel = CollectingChannel()
    worker = build_worker(
        fx_dev_env.client,
        catalog,
        task_queue=fx_task_queue,
        channels={CHANNEL: channel},
        message_log=store,
        secrets=keys.get,
        knowledge_dir=_knowledge(tmp_path),
        ai_profiles=_profiles(dify, claude),
    )
    conversations = Conversations(fx_dev_env.client, catalog, task_queue=fx_task_queue)
    try:
        async with worker:
            message = InboundMessage(id=f"in-{uuid4()}", text="Can you repair my bicycle?", channel=CHANNEL)
            await conversations.send(conv, message)
            assert await channel.wait_texts(conv, 1) == ["Connecting you to a colleague."]
            state = (await conversations.state(conv)).state
            assert state["status"] == "handoff"

            # the vendors answered with the key in their error bodies
            assert keys["DIFY_KEY"] in dify.error_body(401, dify.requests[0])["message"]
            rows = await eventually(
                lambda: _rows(store, conv) if len(_rows(store, conv)) >= 3 else None, "the log entries"
            )
            # nothing lost: the customer's message, the failed chain with its attempts, the hand-over
            assert ("in", "Can you repair my bicycle?", "received") in [(r.direction, r.text, r.status) for r in rows]
            (failed,) = [r for r in rows if r.status == "ai_failed"]
            outcomes = [(a["provider"], a["outcome"]) for a in failed.meta["ai"]["attempts"]]
            assert outcomes == [("dify/kb", "unauthorized"), ("anthropic/claude", "unavailable"), ("faq", "empty")]
            assert "dify: HTTP 401" in failed.detail

            history = await history_text(conversations.handle(conv))
            assert "ai_failed" in history or "unauthorized" in history  # the right history ...
            await conversations.handle(conv).terminate("test finished")
    finally:
        store.close()
    # ... and no key in it, in the database, in the worker's logs or in the failure detail
    database = b"".join(p.read_bytes() for p in tmp_path.glob("flowdesk.db*"))
    for key in keys.values():
        assert key not in history
        assert key.encode() not in database
        assert key not in caplog.text
        assert key not in failed.detail


def _rows(store: Store, conversation_id: str) -> list[Message]:
    return store.transcript(conversation_id)


FAQ_ONLY_FLOW = """
flow: faq-only
ai:
  helpdesk:
    providers: [{ use: faq, knowledge: kb.yaml }]
steps:
  listen:
    wait: message
  answer:
    ai: helpdesk
    on_error: sorry
    next: listen
  sorry:
    say: I have no answer to that.
    next: listen
"""


async def test_an_offline_chain_answers_from_its_revision_without_an_activity(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    """The FAQ's knowledge is part of the revision, so the workflow answers the chain itself."""
    conv = f"ai-{uuid4().hex}"
    knowledge_dir = _knowledge(tmp_path)
    async with running_conversations(
        fx_dev_env.client, fx_task_queue, tmp_path, [FAQ_ONLY_FLOW], knowledge_dir=knowledge_dir
    ) as rt:
        # The file changes after the revision was published: the AI activity would read
        # the new file, the revision still holds the old text.
        (knowledge_dir / "kb.yaml").write_text(
            'entries: [{question: "How long does shipping take?", answer: "Ask the carrier."}]\n', encoding="utf-8"
        )
        await rt.send(conv, "How long does shipping take?")
        await rt.send(conv, "Can you repair my bicycle?")
        assert await rt.channel.wait_texts(conv, 2) == [
            "Shipping takes 3 to 5 working days.",
            "I have no answer to that.",
        ]

        answered, _ = await rt.wait_entries(conv, "out", 2)
        assert answered.meta["ai"]["provider"] == "faq"
        assert [(a["provider"], a["outcome"]) for a in answered.meta["ai"]["attempts"]] == [("faq", "ok")]
        failed = await eventually(
            lambda: next((e for e in rt.entries(conv) if e.status == "ai_failed"), None), "the failed chain's entry"
        )
        assert [(a["provider"], a["outcome"]) for a in failed.meta["ai"]["attempts"]] == [("faq", "empty")]

        history = await history_text(rt.handle(conv))
        assert "offline-ai-in-workflow" in history
        assert "flowdesk.call_ai" not in history
