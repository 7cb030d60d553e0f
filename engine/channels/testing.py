"""The contract every channel passes, for its tests: subclass, fill in a few methods, done.

Modelled on a chat server's webhook integrations: each vendor's recorded payloads
live under ``tests/fixtures/channels/<vendor>/`` (``<name>.json``, the body as the
vendor sends it) with ``expected.json`` saying what each decodes to, and one
shared base replays them. The parts:

- :class:`ChannelContract` (every channel): a name and capabilities; a key sent
  twice reaches the customer once; choices reach the customer, as buttons or a
  numbered list; text over the channel's limit arrives whole, in parts.
- :class:`WebhookContract` (channels the vendor calls): a signed request is
  accepted and decodes to what ``expected.json`` says; a forged or missing
  signature is :class:`SignatureInvalid`; a redelivered request decodes to the same
  message ids (so the store keeps one); a signed body that is not the vendor's
  format is :class:`PayloadInvalid`, never another exception.
- :class:`StaleSignatureContract`: for vendors whose signature covers a time, a
  request signed too long ago is refused.
- :class:`HttpSendContract` (channels that call a vendor API): against a
  :class:`ScriptedVendor` (a real local HTTP server), a 429 is
  :class:`ChannelThrottled` with the vendor's ``Retry-After``, a 500 is
  :class:`ChannelUnavailable`, a 400 is :class:`DeliveryRejected`.

The classes hold no pytest import: pytest collects a subclass named ``Test...``
and runs its ``test_`` methods (async ones through pytest-asyncio).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from engine.channels.errors import (
    ChannelThrottled,
    ChannelUnavailable,
    DeliveryRejected,
    PayloadInvalid,
    SignatureInvalid,
)
from engine.channels.types import (
    Channel,
    Decoded,
    Incoming,
    OutboundMessage,
    StatusUpdate,
    WebhookChannel,
    WebhookRequest,
)

# -- every channel -----------------------------------------------------------------------------


class ChannelContract:
    """What every channel does. Subclasses implement :meth:`make_channel` and :meth:`received`."""

    #: the channel's kind, as its connector names it
    kind: ClassVar[str]

    async def make_channel(self, api_base: str | None = None) -> Channel:
        """A channel to test; ``api_base`` points an HTTP channel at a :class:`ScriptedVendor`."""
        raise NotImplementedError

    async def received(self, channel: Channel, recipient: str) -> list[str]:
        """The texts the customer has been shown so far, in order (buttons included in the text)."""
        raise NotImplementedError

    def recipient(self) -> str:
        """Whom the contract's messages go to (a chat id, a phone number, a contact id)."""
        return "customer-1"

    def outbound(self, key: str = "reply-1", text: str = "Your order has shipped.", **changes: Any) -> OutboundMessage:
        recipient = self.recipient()
        message = OutboundMessage(
            conversation_id="conv-contract",
            key=key,
            text=text,
            contact={"id": recipient},
            recipient=recipient,
            at="2026-12-02T10:00:00+00:00",
        )
        return replace(message, **changes)

    async def test_has_a_name_and_capabilities(self) -> None:
        channel = await self.make_channel()
        assert channel.name == self.kind
        assert channel.capabilities.text
        limit = channel.capabilities.max_text_length
        assert limit is None or limit > 0

    async def test_a_key_sent_twice_reaches_the_customer_once(self) -> None:
        channel = await self.make_channel()
        first = await channel.send(self.outbound())
        again = await channel.send(self.outbound())
        assert first.status in ("sent", "stored")
        # Not a second message: the channel says duplicate, or names the message it sent before.
        assert again.status == "duplicate" or again.channel_message_id == first.channel_message_id
        assert await self.received(channel, self.recipient()) == ["Your order has shipped."]

    async def test_choices_reach_the_customer(self) -> None:
        channel = await self.make_channel()
        await channel.send(self.outbound(text="Which order?", choices=("A-100", "B-200")))
        shown = "\n".join(await self.received(channel, self.recipient()))
        assert "Which order?" in shown
        assert "A-100" in shown and "B-200" in shown

    async def test_text_over_the_limit_arrives_whole_in_parts(self) -> None:
        channel = await self.make_channel()
        limit = channel.capabilities.max_text_length or 4096
        sentence = "This sentence is part of a long answer. "
        text = (sentence * (2 * limit // len(sentence) + 1)).strip()
        await channel.send(self.outbound(text=text))
        parts = await self.received(channel, self.recipient())
        if channel.capabilities.max_text_length is not None:
            assert all(len(part) <= limit for part in parts)
        assert " ".join(parts).split() == text.split()


# -- channels the vendor calls -----------------------------------------------------------------


class WebhookContract:
    """What a webhook channel does with requests. Subclasses sign requests the vendor's way."""

    #: ``tests/fixtures/channels/<vendor>``: ``<name>.json`` bodies and ``expected.json``
    fixtures: ClassVar[Path]

    async def make_webhook_channel(self) -> WebhookChannel:
        raise NotImplementedError

    def sign(self, body: bytes, *, at: float, path: str = "/") -> dict[str, str]:
        """The headers (lower-case names) the vendor sends with ``body``, signed at ``at``."""
        raise NotImplementedError

    def forge(self, body: bytes, *, at: float) -> dict[str, str]:
        """Headers signed with the wrong secret."""
        raise NotImplementedError

    def path(self) -> str:
        return "/webhooks/" + self.fixtures.name

    def request(self, body: bytes, headers: Mapping[str, str], *, at: float | None = None) -> WebhookRequest:
        stamp = time.time() if at is None else at
        return WebhookRequest(
            method="POST",
            path=self.path(),
            headers={k.lower(): v for k, v in {"content-type": "application/json", **headers}.items()},
            query={},
            body=body,
            received_at=stamp,
        )

    def signed(self, body: bytes, *, at: float | None = None) -> WebhookRequest:
        stamp = time.time() if at is None else at
        return self.request(body, self.sign(body, at=stamp, path=self.path()), at=stamp)

    def recorded(self) -> dict[str, bytes]:
        """Every recorded body, by name."""
        bodies = {p.stem: p.read_bytes() for p in sorted(self.fixtures.glob("*.json")) if p.name != "expected.json"}
        assert bodies, f"no recorded payloads under {self.fixtures}"
        return bodies

    def expected(self) -> dict[str, list[dict[str, Any]]]:
        expected: dict[str, list[dict[str, Any]]] = json.loads((self.fixtures / "expected.json").read_text("utf-8"))
        return expected

    async def test_every_recorded_payload_decodes_as_expected(self) -> None:
        channel = await self.make_webhook_channel()
        expected = self.expected()
        recorded = self.recorded()
        assert set(expected) == set(recorded), "expected.json names every recorded payload, and only those"
        for name, body in recorded.items():
            request = self.signed(body)
            channel.verify(request)
            got = [_summary(item) for item in channel.decode(request)]
            want = expected[name]
            matches = len(got) == len(want) and all(_matches(g, w) for g, w in zip(got, want, strict=True))
            assert matches, f"{name}: decoded {got}, expected {want}"

    async def test_a_forged_signature_is_refused(self) -> None:
        channel = await self.make_webhook_channel()
        body = next(iter(self.recorded().values()))
        stamp = time.time()
        try:
            channel.verify(self.request(body, self.forge(body, at=stamp), at=stamp))
        except SignatureInvalid:
            return
        raise AssertionError("a request signed with the wrong secret was accepted")

    async def test_a_missing_signature_is_refused(self) -> None:
        channel = await self.make_webhook_channel()
        body = next(iter(self.recorded().values()))
        try:
            channel.verify(self.request(body, {}))
        except SignatureInvalid:
            return
        raise AssertionError("a request without a signature was accepted")

    async def test_a_body_changed_after_signing_is_refused(self) -> None:
        channel = await self.make_webhook_channel()
        body = next(iter(self.recorded().values()))
        stamp = time.time()
        headers = self.sign(body, at=stamp, path=self.path())
        try:
            channel.verify(self.request(body + b" ", headers, at=stamp))
        except SignatureInvalid:
            return
        raise AssertionError("a body changed after it was signed was accepted")

    async def test_a_redelivery_decodes_to_the_same_message_ids(self) -> None:
        channel = await self.make_webhook_channel()
        for name, body in self.recorded().items():
            first = [_identity(item) for item in channel.decode(self.signed(body))]
            again = [_identity(item) for item in channel.decode(self.signed(body, at=time.time() + 30))]
            assert first == again, f"{name}: a redelivery decoded to other ids ({first} then {again})"

    async def test_a_signed_body_in_another_format_is_payload_invalid(self) -> None:
        channel = await self.make_webhook_channel()
        for body in (b"not json", b"[1, 2", b'"just a string"', b"\xff\xfe"):
            request = self.signed(body)
            channel.verify(request)
            try:
                channel.decode(request)
            except PayloadInvalid as exc:
                assert str(exc), "PayloadInvalid says what was wrong"
                continue
            raise AssertionError(f"{body!r} was decoded instead of refused as PayloadInvalid")


class StaleSignatureContract(WebhookContract):
    """For vendors whose signature covers a time: an old request is a replay, refused."""

    #: how old a signed request may be, in seconds (the channel's replay window)
    replay_window: ClassVar[float] = 300.0

    async def test_a_stale_signature_is_refused(self) -> None:
        channel = await self.make_webhook_channel()
        body = next(iter(self.recorded().values()))
        signed_at = time.time() - self.replay_window - 60
        request = self.request(body, self.sign(body, at=signed_at, path=self.path()))
        try:
            channel.verify(request)
        except SignatureInvalid:
            return
        raise AssertionError("a request signed long ago was accepted (a replay)")


def _summary(item: Decoded) -> dict[str, Any]:
    """A decoded item as JSON data (tuples as lists), without its raw payload."""
    data = json.loads(json.dumps(asdict(item)))
    data.pop("raw", None)
    kinds = {Incoming: "message", StatusUpdate: "status"}
    data["kind"] = kinds.get(type(item), "ignored")
    return {k: v for k, v in data.items() if v not in (None, "", [])}


def _matches(got: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    """Every field ``expected.json`` names has that value (the others are not checked)."""
    return all(got.get(key) == value for key, value in want.items())


def _identity(item: Decoded) -> str:
    if isinstance(item, Incoming):
        return item.message_id
    if isinstance(item, StatusUpdate):
        return f"status:{item.channel_message_id}:{item.status}"
    return f"ignored:{item.reason}"


# -- channels that call a vendor ---------------------------------------------------------------


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedVendor:
    """A vendor's API on a local port: answers what the test scripts, records what it was sent.

    With nothing scripted it answers ``200 {"ok": true}``. ``async with`` starts and stops it.
    """

    def __init__(self, default: tuple[int, Any] = (200, {"ok": True})) -> None:
        self.default = _Answer(default[0], json.dumps(default[1]).encode())
        self.requests: list[SeenRequest] = []
        self._script: list[_Answer] = []
        self._server: asyncio.Server | None = None
        self.url = ""

    def answer(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> None:
        """The next request gets this answer (then the following scripted one, then the default)."""
        payload = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
        self._script.append(_Answer(status, payload, dict(headers or {})))

    async def __aenter__(self) -> ScriptedVendor:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(SeenRequest(method, path, headers, body))
            answer = self._script.pop(0) if self._script else self.default
            extra = "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
            writer.write(
                f"HTTP/1.1 {answer.status} X\r\ncontent-type: application/json\r\ncontent-length: "
                f"{len(answer.body)}\r\nconnection: close\r\n{extra}\r\n".encode("latin-1")
                + answer.body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


class HttpSendContract:
    """What a channel that calls a vendor API does with the vendor's answers."""

    async def make_channel(self, api_base: str | None = None) -> Channel:
        raise NotImplementedError

    def outbound(self, key: str = "reply-1", text: str = "Your order has shipped.", **changes: Any) -> OutboundMessage:
        raise NotImplementedError

    async def test_a_send_reaches_the_vendor_once(self) -> None:
        async with ScriptedVendor() as vendor:
            channel = await self.make_channel(api_base=vendor.url)
            receipt = await channel.send(self.outbound(key="http-1"))
            assert receipt.status == "sent"
            assert len(vendor.requests) >= 1

    async def test_429_is_throttled_for_the_time_the_vendor_names(self) -> None:
        async with ScriptedVendor() as vendor:
            channel = await self.make_channel(api_base=vendor.url)
            vendor.answer(429, {"error": "slow down"}, {"Retry-After": "7"})
            try:
                await channel.send(self.outbound(key="http-429"))
            except ChannelThrottled as exc:
                assert exc.retry_after == 7
                return
            raise AssertionError("a 429 did not raise ChannelThrottled")

    async def test_500_is_unavailable_and_retried(self) -> None:
        async with ScriptedVendor() as vendor:
            channel = await self.make_channel(api_base=vendor.url)
            vendor.answer(500, {"error": "internal"})
            try:
                await channel.send(self.outbound(key="http-500"))
            except ChannelUnavailable:
                pass
            else:
                raise AssertionError("a 500 did not raise ChannelUnavailable")
            # The activity's retry of the same key goes through once the vendor is back.
            receipt = await channel.send(self.outbound(key="http-500"))
            assert receipt.status == "sent"

    async def test_400_is_rejected_for_good(self) -> None:
        async with ScriptedVendor() as vendor:
            channel = await self.make_channel(api_base=vendor.url)
            vendor.answer(400, {"error": "no such recipient"})
            try:
                await channel.send(self.outbound(key="http-400"))
            except DeliveryRejected as exc:
                assert "400" in str(exc)
                return
            raise AssertionError("a 400 did not raise DeliveryRejected")

    async def test_an_unreachable_vendor_is_unavailable(self) -> None:
        async with ScriptedVendor() as vendor:
            url = vendor.url
        channel = await self.make_channel(api_base=url)  # the port is closed now
        try:
            await channel.send(self.outbound(key="http-gone"))
        except ChannelUnavailable:
            return
        raise AssertionError("an unreachable vendor did not raise ChannelUnavailable")


__all__ = [
    "ChannelContract",
    "HttpSendContract",
    "ScriptedVendor",
    "SeenRequest",
    "StaleSignatureContract",
    "WebhookContract",
]
