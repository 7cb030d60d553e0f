"""Any signed body decodes to a list or PayloadInvalid: never another exception (which would be a 500).

Meta's payloads grow new fields and types; a body that is JSON of any shape, or
Meta's shape with any value in any place, must neither crash the webhook nor be
half-read. Bytes that are not JSON at all are covered too.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.channels.whatsapp import WhatsApp
from engine.channels.errors import PayloadInvalid
from engine.channels.types import Ignored, Incoming, StatusUpdate, WebhookRequest
from tests.vendors.whatsapp import APP_SECRET, PHONE_NUMBER_ID, WhatsAppEmulator

CHANNEL = WhatsApp(
    account="default",
    phone_number_id=PHONE_NUMBER_ID,
    access_token="token",
    app_secret=APP_SECRET,
    verify_token="verify",
    api_base="http://127.0.0.1:9",
)
SIGNER = WhatsAppEmulator()

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=30,
)
#: Meta's keys, so that generated bodies reach deep into the decoder instead of failing at the top
keys = st.sampled_from(
    [
        "object", "entry", "changes", "field", "value", "metadata", "phone_number_id", "messages", "statuses",
        "contacts", "profile", "name", "wa_id", "from", "id", "type", "timestamp", "text", "body", "interactive",
        "button_reply", "list_reply", "title", "image", "document", "caption", "filename", "location", "errors",
        "code", "status", "error_data", "details", "button", "payload", "sticker", "audio", "voice",
    ]
)  # fmt: skip
meta_values = st.recursive(
    scalars | st.sampled_from(["whatsapp_business_account", "messages", PHONE_NUMBER_ID, "text", "failed", "image"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=40,
)


def _message(kind: str, content: Any) -> dict[str, Any]:
    return {"from": "16505551234", "id": "wamid.X", "timestamp": "1749416383", "type": kind, kind: content}


near_meta = st.builds(
    lambda messages, statuses, contacts: {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "metadata": {"phone_number_id": PHONE_NUMBER_ID},
                            "messages": messages,
                            "statuses": statuses,
                            "contacts": contacts,
                        },
                    }
                ]
            }
        ],
    },
    st.lists(
        st.builds(_message, st.sampled_from(["text", "interactive", "image", "location", "contacts"]), meta_values)
    )
    | meta_values,
    meta_values,
    meta_values,
)


def _decode(body: bytes) -> list[Any] | None:
    request = WebhookRequest(
        "POST", "/webhooks/whatsapp", {"x-hub-signature-256": SIGNER.signature(body)}, {}, body, time.time()
    )
    CHANNEL.verify(request)  # a valid signature: what follows is the decoder's alone
    try:
        decoded = CHANNEL.decode(request)
    except PayloadInvalid as exc:
        assert str(exc)
        return None
    assert isinstance(decoded, list)
    assert all(isinstance(item, Incoming | StatusUpdate | Ignored) for item in decoded)
    return decoded


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values | meta_values)
def test_any_json_decodes_to_a_list_or_payload_invalid(value: Any) -> None:
    _decode(json.dumps(value).encode())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_meta)
def test_metas_shape_with_any_values_decodes_to_a_list_or_payload_invalid(value: Any) -> None:
    _decode(json.dumps(value).encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_to_a_list_or_payload_invalid(body: bytes) -> None:
    _decode(body)


def test_a_deeply_nested_body_is_payload_invalid() -> None:
    assert _decode(b"[" * 100_000 + b"]" * 100_000) is None
    assert _decode(b'{"object": "whatsapp_business_account", "entry": ' + b"[" * 50_000 + b"]" * 50_000 + b"}") is None
