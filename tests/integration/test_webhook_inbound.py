"""What a vendor's message carries besides text reaches the flow and the log; statuses move replies.

Through a node (what ``flowdesk serve`` runs) with Telegram pointed at its emulator:
a photo with a caption is, to the flow, ``message.attachments`` and the caption; a
location is a typed part with a text the flow can use; the vendor's payload is
kept as it came, once, however often it is redelivered; an edited message is
answered 200 and counted, not treated as a new message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from temporalio.testing import WorkflowEnvironment

from engine.message_log import RecordInput
from engine.server.channel_host import ServerChannelHost
from tests.integration.runtime_support import eventually
from tests.integration.server_support import RunningNode, running_node
from tests.vendors.telegram import SECRET, TOKEN, TelegramEmulator, TelegramUpdates

MEDIA_FLOW = """
flow: media
channels: [telegram]
steps:
  listen:
    wait: message
  route:
    switch:
      - if: "message.text == 'picture please'"
        goto: picture
    default: tell
  picture:
    say: { text: "Here it is:", image: "https://shop.example.com/img/part-7.jpg" }
    next: listen
  tell:
    say: >-
      {{ message.attachments | length }} attachment(s){% for a in message.attachments %}, a {{ a.kind }}{% endfor %};
      text: {{ message.text }}{% for p in message.parts %}; part {{ p.type }}{% endfor %}
    next: listen
"""


@pytest.fixture(name="fx_telegram")
def fixture_telegram() -> Iterator[TelegramEmulator]:
    with TelegramEmulator() as telegram:
        yield telegram


@pytest.fixture(name="fx_node")
async def fixture_node(
    fx_dev_env: WorkflowEnvironment, fx_telegram: TelegramEmulator, tmp_path: Path
) -> AsyncIterator[RunningNode]:
    settings = {
        "channels": {"telegram": {"bot_token": TOKEN, "secret_token": SECRET, "api_base": fx_telegram.api_base}}
    }
    async with running_node(fx_dev_env, tmp_path, flows={"media.yaml": MEDIA_FLOW}, settings=settings) as node:
        yield node


def _ignored(reason: str) -> float:
    return REGISTRY.get_sample_value("flowdesk_webhook_ignored_total", {"channel": "telegram", "reason": reason}) or 0.0


async def test_a_photo_reaches_the_flow_as_an_attachment_and_the_payload_is_kept_once(
    fx_node: RunningNode, fx_telegram: TelegramEmulator
) -> None:
    updates = TelegramUpdates()
    hook = fx_node.url + "/webhooks/telegram"
    update = updates.photo(7001, caption="the broken part")
    for _ in range(3):  # Telegram redelivers until it hears 200
        assert (await updates.post_async(hook, update)).status == 200
    sent = await asyncio.to_thread(fx_telegram.wait_for, 7001, 1)
    assert sent[0].text == "1 attachment(s), a image; text: the broken part"
    store = fx_node.services.store
    conversation = (await asyncio.to_thread(store.list_conversations))[0]
    inbound = [m for m in await asyncio.to_thread(store.transcript, conversation.id) if m.direction == "in"]
    assert len(inbound) == 1
    assert inbound[0].meta["attachments"] == [{"kind": "image", "media_id": "AgACAgIAAxkBAAIBQ2"}]  # the largest size
    assert inbound[0].raw_ref == "channel_payload"
    kept = await asyncio.to_thread(store.payload, "telegram", inbound[0].message_id)
    assert kept == update  # as Telegram sent it
    await asyncio.sleep(0.5)
    assert len(fx_telegram.messages(7001)) == 1  # answered once


async def test_a_location_is_a_typed_part_and_an_edit_is_counted_not_answered(
    fx_node: RunningNode, fx_telegram: TelegramEmulator
) -> None:
    updates = TelegramUpdates(first_update_id=500)
    hook = fx_node.url + "/webhooks/telegram"
    location = {
        "update_id": 501,
        "message": {
            "message_id": 9,
            "date": 1764670000,
            "chat": {"id": 7002, "type": "private"},
            "from": updates.user(7002),
            "location": {"latitude": 52.52, "longitude": 13.405},
        },
    }
    assert (await updates.post_async(hook, location)).status == 200
    sent = await asyncio.to_thread(fx_telegram.wait_for, 7002, 1)
    assert sent[0].text.startswith("0 attachment(s); text: ") and sent[0].text.endswith("; part location")
    before = _ignored("edited_message")
    edited = {"update_id": 502, "edited_message": {**location["message"], "edit_date": 1764670100}}  # type: ignore[dict-item]
    assert (await updates.post_async(hook, edited)).status == 200
    await eventually(lambda: _ignored("edited_message") == before + 1, "the edit to be counted")
    await asyncio.sleep(0.5)
    assert len(fx_telegram.messages(7002)) == 1  # an edit is not a new message


async def test_an_image_the_flow_sends_arrives_as_a_photo_then_its_text(
    fx_node: RunningNode, fx_telegram: TelegramEmulator
) -> None:
    updates = TelegramUpdates(first_update_id=900)
    assert (
        await updates.post_async(fx_node.url + "/webhooks/telegram", updates.text(7003, "picture please"))
    ).status == 200
    sent = await asyncio.to_thread(fx_telegram.wait_for, 7003, 2)
    assert [c.method for c in fx_telegram.calls if c.params.get("chat_id") in (7003, "7003")] == [
        "sendPhoto",
        "sendMessage",
    ]
    assert sent[0].media == "https://shop.example.com/img/part-7.jpg"
    assert sent[1].text == "Here it is:"


async def test_a_message_stored_before_a_stop_is_handed_over_at_the_next_start(
    fx_node: RunningNode, fx_telegram: TelegramEmulator
) -> None:
    # What a stop between the webhook's 200 and the hand-over leaves: the message stored, queued.
    store = fx_node.services.store
    contact = await asyncio.to_thread(store.resolve_contact, "telegram", "7004", name="Ana")
    conversation, _ = await asyncio.to_thread(store.open_conversation, contact.id, "telegram")
    entry = RecordInput(
        conversation.id,
        "in",
        "left in the queue",
        "telegram",
        "update-7004",
        "2026-12-02T10:00:00+00:00",
        status="queued",
        meta={"sender": "7004"},
    )
    await asyncio.to_thread(store.record_inbound, entry)
    host = fx_node.services.channel_host
    assert isinstance(host, ServerChannelHost)
    assert await host.resume_queued() == 1
    sent = await asyncio.to_thread(fx_telegram.wait_for, 7004, 1)
    assert sent[0].text == "0 attachment(s); text: left in the queue"
    rows = await asyncio.to_thread(store.transcript, conversation.id)
    assert [(m.direction, m.status) for m in rows if m.message_id == "update-7004"] == [("in", "received")]
    assert await asyncio.to_thread(store.queued_inbound) == []
