"""``outbox``: a complete channel in one file, for an in-house messaging system of your own.

It has every part a vendor channel has (``engine.channels``):

- ``send``: each reply is appended as one JSON line to a file, or, with
  ``callback_url``, POSTed there as JSON signed like the webhooks below. Sending
  is idempotent by the delivery ``key``: a retried delivery of a key already
  sent returns ``duplicate`` and sends nothing (the file remembers across restarts).
- ``verify``: a webhook request must carry ``X-Outbox-Timestamp`` (Unix seconds)
  and ``X-Outbox-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body>``
  under ``secret``, at most five minutes old; anything else is refused.
- ``decode``: the verified body is a JSON message ``{"id", "text", "from"}`` or a
  list of them; ``{"type": "ping"}`` and other events are accepted and ignored.

Settings (``channels.outbox`` in flowdesk.yaml)::

    channels:
      outbox:
        path: outbox.jsonl                 # relative paths: to the worker's working directory
        secret: ${env:OUTBOX_SECRET}       # signs webhooks (and callbacks)
        callback_url: https://chat.example.com/flowdesk   # optional: POST replies here instead

Each reply: ``{"key", "conversation_id", "contact", "sender", "text", "choices", "at"}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.channels.errors import PayloadInvalid, SignatureInvalid
from engine.channels.host import ChannelConfig
from engine.channels.http import post_bytes
from engine.channels.types import Capabilities, Decoded, Incoming, OutboundMessage, Receipt, WebhookRequest

#: How old a signed request may be before it is taken for a replay.
REPLAY_WINDOW_SECONDS = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Outbox-Signature`` value of ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class Outbox:
    """The ``outbox`` channel: replies to a file (or a callback URL), messages from signed webhooks."""

    name = "outbox"
    capabilities = Capabilities(text=True, choices=False)

    def __init__(self, config: ChannelConfig) -> None:
        params = config.params
        path, secret = params.get("path"), params.get("secret")
        if not isinstance(path, str) or not path:
            raise ValueError("channels.outbox.path is missing: set the file replies go to (or `enabled: false`)")
        if not isinstance(secret, str) or len(secret) < 16:
            raise ValueError("channels.outbox.secret is missing or shorter than 16 characters: it signs webhooks")
        self.secret = secret
        self.callback_url = str(params.get("callback_url") or "")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Deliveries run concurrently in the worker's threads; one writer at a time.
        self._lock = threading.Lock()
        # Keys already sent: a worker restarted mid-retry does not send a reply twice.
        self._keys = {line["key"] for line in self.lines()}

    # -- out -------------------------------------------------------------------------------

    def lines(self) -> list[dict[str, Any]]:
        """Everything written so far, oldest first."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    async def send(self, message: OutboundMessage) -> Receipt:
        if message.key in self._keys:
            return Receipt("duplicate", channel_message_id=message.key)
        record = {
            "key": message.key,
            "conversation_id": message.conversation_id,
            "contact": dict(message.contact),
            "sender": message.sender,
            "text": message.text,
            "choices": list(message.choices),
            "at": message.at,
        }
        if self.callback_url:
            # Raises ChannelThrottled / ChannelUnavailable / DeliveryRejected for the deliver
            # activity to retry (or not) as the answer says; the key is kept only once it went out.
            body = json.dumps(record, ensure_ascii=False).encode()
            stamp = str(int(time.time()))
            headers = {
                "content-type": "application/json",
                "x-outbox-timestamp": stamp,
                "x-outbox-signature": signature(self.secret, stamp, body),
            }
            await post_bytes(self.callback_url, body, headers=headers, vendor="outbox callback")
        # File I/O off the event loop: the worker's other activities keep running.
        written = await asyncio.to_thread(self._append, record)
        return Receipt("sent" if written else "duplicate", channel_message_id=message.key)

    def _append(self, record: Mapping[str, Any]) -> bool:
        with self._lock:
            if record["key"] in self._keys:
                return False
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._keys.add(str(record["key"]))
        return True

    # -- in --------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        stamp, claimed = request.header("x-outbox-timestamp"), request.header("x-outbox-signature")
        if not stamp or not claimed:
            raise SignatureInvalid("X-Outbox-Timestamp and X-Outbox-Signature are required")
        if not stamp.isdigit() or abs(request.received_at - int(stamp)) > REPLAY_WINDOW_SECONDS:
            raise SignatureInvalid("the request's timestamp is more than five minutes away from now")
        if not hmac.compare_digest(claimed, signature(self.secret, stamp, request.body)):
            raise SignatureInvalid("the signature does not match the body")

    def decode(self, request: WebhookRequest) -> Sequence[Decoded]:
        try:
            data = json.loads(request.body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PayloadInvalid(f"the body is not JSON: {exc}") from None
        items = data if isinstance(data, list) else [data]
        return [message for item in items if (message := self._message(item)) is not None]

    def _message(self, item: Any) -> Incoming | None:
        if not isinstance(item, Mapping):
            raise PayloadInvalid(f"an outbox message is a JSON object, got {type(item).__name__}")
        if item.get("type", "message") != "message":
            return None  # another event (a ping): accepted, nothing to do
        message_id, text, sender = item.get("id"), item.get("text"), item.get("from")
        if not isinstance(message_id, str) or not message_id or not isinstance(text, str):
            raise PayloadInvalid('an outbox message needs a string "id" and "text"')
        if not isinstance(sender, str) or not sender:
            raise PayloadInvalid('an outbox message needs a string "from" (the sender)')
        return Incoming(message_id=message_id, sender=sender, text=text, raw=dict(item))
