"""Whatever a correctly signed webhook carries, the Telegram decoder answers PayloadInvalid or what it found.

A signed body is trusted to come from Telegram, not to be well formed (a proxy, a new
Bot API version, a bug): any other exception would be a 500 and Telegram's retries.
The bodies are arbitrary bytes, arbitrary JSON, and updates whose every field may be
of any type, nested the way real updates are.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.channels.telegram import SECRET_HEADER, create
from engine.channels.errors import PayloadInvalid
from engine.channels.host import ChannelConfig
from engine.channels.types import Ignored, Incoming, StatusUpdate, WebhookRequest

SECRET = "fuzz_secret-token"
CHANNEL = create(ChannelConfig("telegram", "default", {"bot_token": "1:fuzz", "secret_token": SECRET}))

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.sampled_from(["fd:0", "fd:1"])
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)


def _shaped(keys: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with some of the keys a real update has, each holding anything."""
    return st.fixed_dictionaries({}, optional={key: values for key in keys})


users = _shaped(["id", "is_bot", "first_name", "last_name", "language_code"], json_values)
chats = _shaped(["id", "type"], st.integers() | json_values)
buttons = _shaped(["text", "callback_data"], json_values) | json_values
keyboards = (
    st.fixed_dictionaries({"inline_keyboard": st.lists(st.lists(buttons, max_size=3), max_size=3)}) | json_values
)
sizes = st.lists(_shaped(["file_id", "width", "height", "file_size"], json_values) | json_values, max_size=3)
media = _shaped(["file_id", "file_name", "mime_type", "emoji", "set_name", "latitude", "longitude"], json_values)
messages = st.fixed_dictionaries(
    {},
    optional={
        "from": users | json_values,
        "chat": chats | json_values,
        "date": json_values,
        "text": json_values,
        "caption": json_values,
        "photo": sizes | json_values,
        "document": media | json_values,
        "location": media | json_values,
        "sticker": media | json_values,
        "reply_markup": keyboards,
    },
)
callbacks = _shaped(["id", "data"], json_values) | st.fixed_dictionaries(
    {"id": json_values, "from": users | json_values, "message": messages | json_values, "data": json_values}
)
update_ids = st.integers() | json_values
#: Mostly the kinds the decoder reads, so deep fields are reached often; the rest sometimes.
updates = (
    st.builds(lambda uid, m: {"update_id": uid, "message": m}, update_ids, messages)
    | st.builds(lambda uid, q: {"update_id": uid, "callback_query": q}, update_ids, callbacks)
    | st.builds(
        lambda uid, kind, event: {"update_id": uid, kind: event},
        update_ids,
        st.sampled_from(["message", "callback_query", "edited_message", "channel_post", "my_chat_member"]),
        json_values,
    )
)


def _decode(body: bytes) -> None:
    request = WebhookRequest("POST", "/webhooks/telegram", {SECRET_HEADER.lower(): SECRET}, {}, body, time.time())
    CHANNEL.verify(request)  # a valid secret: what follows is the decoder's alone
    try:
        decoded = CHANNEL.decode(request)
    except PayloadInvalid as exc:
        assert str(exc)
        return
    assert isinstance(decoded, list) and len(decoded) == 1
    (item,) = decoded
    assert isinstance(item, Incoming | Ignored | StatusUpdate)
    if isinstance(item, Incoming):
        assert isinstance(item.message_id, str) and isinstance(item.sender, str) and isinstance(item.text, str)
        assert item.sender, "an incoming message names whom to answer"
        json.dumps(item.parts)  # stored as JSON with the message


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(updates)
def test_update_shaped_bodies_decode_or_are_payload_invalid(update: dict[str, Any]) -> None:
    _decode(json.dumps(update).encode())


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_decodes_or_is_payload_invalid(value: Any) -> None:
    _decode(json.dumps(value).encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_are_payload_invalid(body: bytes) -> None:
    _decode(body)


def test_deeply_nested_json_is_payload_invalid_not_a_crash() -> None:
    _decode(b"[" * 100_000 + b"]" * 100_000)
