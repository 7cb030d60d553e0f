"""``api``: the signed API channel, for a system that is not a chat vendor (a CRM, a shop backend).

Settings (``channels.api`` in flowdesk.yaml; one block per connected system)::

    channels:
      api:
        accounts:
          crm:
            secret: ${env:FLOWDESK_API_SECRET}        # at least 16 characters; signs both ways
            callback_url: https://crm.example.com/flowdesk/replies

**Signing** (both directions, the account's ``secret``): a request carries
``X-Flowdesk-Timestamp: <Unix seconds>`` and
``X-Flowdesk-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>``.
A timestamp more than five minutes from the receiver's clock, in either direction,
is refused: a captured request cannot be replayed later. :func:`sign` and
:func:`check_signature` are the reference implementation.

**In**: ``POST /webhooks/api/<account>`` with a JSON body::

    {"contact": {"id": "c-42", "name": "Ana", "locale": "en"},    # name, locale optional
     "message": {"id": "m-1001", "text": "Where is my order?", "choice": "Track"}}  # choice optional

``message.id`` is unique per message: a redelivery with the same id is the same
message (stored once). Unknown fields are ignored, so senders may add their own.

**Out**: each reply is POSTed to ``callback_url``, signed the same way::

    {"type": "message", "account": "crm", "conversation_id": "…",
     "contact": {"id": "c-42"},
     "message": {"id": "<delivery key>", "text": "…", "choices": ["Yes", "No"],
                 "attachments": [{"kind": "image", "url": "…", "name": "", "mime_type": ""}],
                 "sender": "bot" | "agent" | "system"},
     "at": "2026-12-02T10:00:00+00:00"}

``message.id`` (also sent as ``Idempotency-Key``) is the same on every retry of one
reply: the receiver drops an id it has seen. Any 2xx acknowledges the reply (a JSON
answer ``{"id": "..."}`` names the receiver's own id of it); 429 is retried after
``Retry-After``; 5xx, 408 and no answer within 30 s are retried with back-off until
acknowledged; any other status (a 3xx redirect included: it is not an
acknowledgement) fails the reply for good, as does a reply with no recipient (nothing is
sent: the receiver could not route it). A retry is signed afresh, with a new
timestamp. An acknowledged key is not sent again by this process (a bounded record);
after a restart the receiver's own check of ``message.id`` is what keeps a reply single.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from engine.channels.errors import (
    DeliveryRejected,
    PayloadInvalid,
    SignatureInvalid,
)
from engine.channels.host import ChannelConfig
from engine.channels.http import http_client, send_request
from engine.channels.types import (
    Capabilities,
    Decoded,
    Incoming,
    OutboundMessage,
    Receipt,
    WebhookRequest,
    channel_address,
)
from engine.errors import ConfigError
from engine.settings_sections import DEFAULT_ACCOUNT

SIGNATURE_HEADER = "X-Flowdesk-Signature"
TIMESTAMP_HEADER = "X-Flowdesk-Timestamp"
#: How far a signed request's timestamp may be from the receiver's clock, either way:
#: wide enough for clock drift and a slow network, short enough that a captured request expires.
REPLAY_WINDOW_SECONDS = 300
#: Longest contact or message id: ids are keys in the store, not payloads.
MAX_ID_LENGTH = 256
#: Longest locale tag (BCP 47 tags in practice stay far below it).
MAX_LOCALE_LENGTH = 35
#: A shorter secret is guessable offline from one signed request.
MIN_SECRET_LENGTH = 16
#: Acknowledged keys remembered per account: enough for every retry in flight, bounded in memory.
ACKNOWLEDGED_KEYS_REMEMBERED = 10_000

CAPABILITIES = Capabilities(text=True, choices=True, max_text_length=None, reply_window=None)

_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


# -- signing: the reference both sides mirror ------------------------------------------------------


def sign(secret: bytes | str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Flowdesk-Signature`` value of ``body`` sent at ``timestamp``: ``sha256=<hex>``."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def check_signature(
    secret: bytes | str,
    body: bytes,
    *,
    timestamp: str | None,
    signature: str | None,
    now: float,
    window: float = REPLAY_WINDOW_SECONDS,
) -> None:
    """Raise SignatureInvalid unless ``signature`` signs ``body`` at a ``timestamp`` within ``window`` of ``now``.

    The reasons name what is wrong (a header, its format, the time) but never the
    secret or the expected digest.
    """
    if not timestamp or not signature:
        raise SignatureInvalid(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureInvalid(f"{TIMESTAMP_HEADER} must be Unix seconds, like 1764669600")
    claimed = _SIGNATURE.fullmatch(signature)
    if claimed is None:
        raise SignatureInvalid(f"{SIGNATURE_HEADER} must be sha256= followed by 64 hex digits")
    skew = now - int(timestamp)
    if skew > window:
        raise SignatureInvalid(f"{TIMESTAMP_HEADER} is more than {window:.0f} s old: sign each request when it is sent")
    if skew < -window:
        raise SignatureInvalid(f"{TIMESTAMP_HEADER} is more than {window:.0f} s ahead of this server's clock")
    # Compare digests as bytes, in constant time: the hex's letter case does not matter.
    expected = bytes.fromhex(sign(secret, timestamp, body).removeprefix("sha256="))
    if not hmac.compare_digest(expected, bytes.fromhex(claimed.group(1))):
        raise SignatureInvalid("the signature does not match the body (wrong secret, or the body changed)")


# -- the channel -----------------------------------------------------------------------------------


class ApiChannel:
    """One connected system: messages in from signed webhooks, replies out to its ``callback_url``."""

    name = "api"
    capabilities = CAPABILITIES

    def __init__(self, account: str, secret: str, callback_url: str, *, clock: Callable[[], float] = time.time) -> None:
        self.account = account
        #: how logs and errors name this account: ``api:crm`` (``api`` for the default one)
        self.address = channel_address(self.name, account)
        self.callback_url = callback_url
        self._secret = secret.encode()
        self._clock = clock
        # key -> the id the receiver acknowledged it under; oldest forgotten first.
        self._acknowledged: OrderedDict[str, str] = OrderedDict()

    def __repr__(self) -> str:  # no secret in a log line or a traceback's locals
        return f"ApiChannel(account={self.account!r})"

    # -- in ------------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        check_signature(
            self._secret,
            request.body,
            timestamp=request.header(TIMESTAMP_HEADER),
            signature=request.header(SIGNATURE_HEADER),
            now=request.received_at,
        )

    def decode(self, request: WebhookRequest) -> Sequence[Decoded]:
        return [decode_message(request.body)]

    # -- out -----------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> Receipt:
        known = self._acknowledged.get(message.key)
        if known is not None:
            return Receipt("duplicate", channel_message_id=known)
        if not message.recipient:
            # The receiver routes by contact.id: a reply without one could reach nobody, or the wrong person.
            raise DeliveryRejected(
                f"the reply has no recipient (the contact's id on {self.address}); nothing was sent",
                code="no_recipient",
            )
        body = json.dumps(callback_body(message, self.account), ensure_ascii=False, separators=(",", ":")).encode()
        # Signed at each attempt: a retry an hour later must not look like a replay.
        stamp = str(int(self._clock()))
        headers = {
            "content-type": "application/json",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: sign(self._secret, stamp, body),
            "idempotency-key": message.key,
        }
        response = await self._post(body, headers)
        receipt_id = _receiver_id(response) or message.key
        self._remember(message.key, receipt_id)
        return Receipt("sent", channel_message_id=receipt_id)

    async def _post(self, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        """POST exactly the signed bytes; any answer but a 2xx raises the channel error it stands for."""
        client = http_client()
        request = client.build_request("POST", self.callback_url, content=body, headers=dict(headers))
        # The URL stays out of the messages: it may carry a token of the receiver's.
        return await send_request(request, vendor=f"the callback of {self.address}")

    def _remember(self, key: str, receipt_id: str) -> None:
        self._acknowledged[key] = receipt_id
        while len(self._acknowledged) > ACKNOWLEDGED_KEYS_REMEMBERED:
            self._acknowledged.popitem(last=False)


def create(config: ChannelConfig) -> ApiChannel:
    """The ``api`` channel of one account; ConfigError names the setting that is wrong."""
    params = config.params
    secret, callback_url = params.get("secret"), params.get("callback_url")
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"{_setting(config.account, 'secret')} must be at least {MIN_SECRET_LENGTH} characters "
            "(make one with `openssl rand -hex 32`)"
        )
    if not isinstance(callback_url, str) or not _is_http_url(callback_url):
        raise ConfigError(
            f"{_setting(config.account, 'callback_url')} must be an http:// or https:// URL "
            "(where replies to this system are POSTed)"
        )
    return ApiChannel(config.account, secret, callback_url)


#: The registry refuses an account without these, naming the missing key.
create.required_settings = ("secret", "callback_url")  # type: ignore[attr-defined]


# -- the wire formats ------------------------------------------------------------------------------


def decode_message(body: bytes) -> Incoming:
    """The message a verified inbound body carries; PayloadInvalid names the field that is wrong."""
    data = _json_object(body)
    contact = _object(data, "contact")
    message = _object(data, "message")
    contact_id = _id(contact, "contact.id", "a string naming the customer in your system")
    message_id = _id(message, "message.id", "a string unique per message: a redelivery with the same id is ignored")
    text = message.get("text")
    if not isinstance(text, str):
        raise PayloadInvalid('message.text is required (a string: what the customer wrote, "" with a choice)')
    choice = _optional(message, "message.choice", MAX_ID_LENGTH)
    if not text.strip() and choice is None:
        raise PayloadInvalid("message.text is empty: send what the customer wrote, or the choice they tapped")
    return Incoming(
        message_id=message_id,
        sender=contact_id,
        # A tapped choice with no words of its own reads as its label, as on other channels.
        text=text if text.strip() else str(choice),
        choice=choice,
        sender_name=_optional(contact, "contact.name", MAX_ID_LENGTH),
        locale=_optional(contact, "contact.locale", MAX_LOCALE_LENGTH),
        raw=data,
    )


def callback_body(message: OutboundMessage, account: str) -> dict[str, Any]:
    """The JSON a reply is POSTed as (see the module docstring)."""
    return {
        "type": "message",
        "account": account,
        "conversation_id": message.conversation_id,
        "contact": {"id": message.recipient},
        "message": {
            "id": message.key,
            "text": message.text,
            "choices": list(message.choices),
            "attachments": [
                {"kind": a.kind, "url": a.url, "name": a.name, "mime_type": a.mime_type} for a in message.attachments
            ],
            "sender": message.sender,
        },
        "at": message.at,
    }


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise PayloadInvalid("the body is not UTF-8: send JSON encoded as UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise PayloadInvalid(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadInvalid(f'the body must be a JSON object {{"contact", "message"}}, got {type(data).__name__}')
    return data


def _object(data: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    value = data.get(field)
    if not isinstance(value, Mapping):
        raise PayloadInvalid(f"{field} is required (a JSON object)")
    return value


def _id(data: Mapping[str, Any], field: str, meaning: str) -> str:
    value = data.get(field.rpartition(".")[2])
    if not isinstance(value, str) or not value.strip():
        raise PayloadInvalid(f"{field} is required ({meaning})")
    if len(value) > MAX_ID_LENGTH:
        raise PayloadInvalid(f"{field} is {len(value)} characters long; at most {MAX_ID_LENGTH} are allowed")
    return value


def _optional(data: Mapping[str, Any], field: str, limit: int) -> str | None:
    value = data.get(field.rpartition(".")[2])
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadInvalid(f"{field} must be a string when given, got {type(value).__name__}")
    if len(value) > limit:
        raise PayloadInvalid(f"{field} is {len(value)} characters long; at most {limit} are allowed")
    return value or None


def _receiver_id(response: httpx.Response) -> str | None:
    """The receiver's own id of the reply, when its answer is ``{"id": "..."}``."""
    try:
        data = response.json()
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH else None


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _setting(account: str, key: str) -> str:
    """The settings path of one key, as the operator writes it."""
    return f"channels.api.{key}" if account == DEFAULT_ACCOUNT else f"channels.api.accounts.{account}.{key}"
