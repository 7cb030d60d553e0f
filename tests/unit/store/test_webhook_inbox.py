"""The webhook inbox: a stored message reaches its conversation even when Temporal is away for a while.

The vendor got its 200 when the message was stored; from then on nothing may lose
it. Against a conversations client that fails twice (Temporal restarting), the
message stays ``queued`` and is handed over once it can be, in the order the
chat's messages came.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

from engine.channels.host import Contact, InboundText
from engine.runtime.client import Conversations
from engine.runtime.types import Accepted, InboundMessage
from engine.server.channel_host import ServerChannelHost
from engine.store import Store


class FlakyConversations:
    """Fails the first ``failures`` hand-overs, then takes every message (recorded in order)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.taken: list[str] = []

    async def send(self, conversation_id: str, message: InboundMessage) -> Accepted:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("Temporal is restarting")
        self.taken.append(message.text)
        return Accepted(conversation_id, message.id)


def _message(store: Store, number: int) -> InboundText:
    row = store.resolve_contact("telegram", "42", name="Ana")
    contact = Contact(row.id, row.name)
    return InboundText(
        "telegram", f"update-{number}", f"message {number}", contact, "2026-12-02T10:00:00+00:00", sender="42"
    )


async def test_a_stored_message_waits_out_an_outage_and_keeps_its_place(fx_store: Store, tmp_path: Path) -> None:
    conversations = FlakyConversations(failures=2)
    host = ServerChannelHost(fx_store, cast(Conversations, conversations), data_dir=tmp_path, max_message_chars=4000)
    first = await host.enqueue(_message(fx_store, 1))
    second = await host.enqueue(_message(fx_store, 2))
    assert first.message.status == second.message.status == "queued"  # stored: the vendor's 200 can go
    again = await host.enqueue(_message(fx_store, 1))  # the vendor redelivers meanwhile
    assert not again.duplicate  # still on its way, not handed over twice

    async def handed_over() -> bool:
        while len(conversations.taken) < 2:
            await asyncio.sleep(0.05)
        return True

    assert await asyncio.wait_for(handed_over(), timeout=15)
    assert conversations.taken == ["message 1", "message 2"]
    statuses: dict[str, Any] = {m.message_id: m.status for m in fx_store.transcript(first.conversation_id)}
    assert statuses == {"update-1": "received", "update-2": "received"}
    assert (await host.enqueue(_message(fx_store, 1))).duplicate  # handed over: a redelivery changes nothing
    await asyncio.sleep(0.2)
    assert conversations.taken == ["message 1", "message 2"]
    await host.aclose()
