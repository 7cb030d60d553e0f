"""``/webhooks/<channel>[/<account>]``: vendors' calls in, verified, then accepted durably, then answered.

One path for every vendor channel (:class:`~engine.channels.types.WebhookChannel`):

1. The body is read up to :data:`WEBHOOK_MAX_BYTES` (over it: 413, nothing read further).
2. ``verify`` checks the signature on the raw bytes before anything is parsed: a
   missing, wrong or stale one is 401 and nothing is stored or logged as a message.
3. ``decode`` turns the body into messages, statuses and ignored events; a body it
   cannot read is 400 with the reason.
4. Each message is stored (``ChannelHost.enqueue``): durable from then on, it is
   answered 200 and handed to its conversation in the background, without the
   answer waiting for the workflow or the reply. A redelivery has the same message
   id and changes nothing. When even the store fails the answer is 503, so the
   vendor delivers it again later.
5. Delivery statuses move the reply they name (sent, delivered, read, failed).

A ``GET`` is the vendor's check of the URL (WhatsApp's ``hub.challenge``) for a
channel that has one (:class:`~engine.channels.types.HandshakeChannel`). Channels
whose settings lack a secret are not built (the registry says which setting is
missing), so their webhook is not served: fail closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, route
from litestar.enums import MediaType
from litestar.params import FromPath

from engine.channels.errors import PayloadInvalid, SignatureInvalid
from engine.channels.host import ChannelHost, InboundText
from engine.channels.types import (
    OTHER_ACCOUNT,
    AcknowledgingChannel,
    Channel,
    Decoded,
    HandshakeChannel,
    Ignored,
    Incoming,
    StatusUpdate,
    WebhookChannel,
    WebhookRequest,
    channel_address,
    webhook_path,
)
from engine.metrics import DELIVERY_FAILURES, DELIVERY_STATUSES, WEBHOOK_IGNORED, WEBHOOK_LATENCY, WEBHOOK_REJECTED
from engine.server.problems import problem_response
from engine.server.services import Services, ServicesDep
from engine.settings_sections import DEFAULT_ACCOUNT
from engine.store import Store

log = logging.getLogger(__name__)

#: Largest webhook body read (vendors' updates are a few KB; media come as references).
WEBHOOK_MAX_BYTES = 1024 * 1024
#: A status can overtake the log entry of its reply (the vendor answers the send and
#: reports "sent" at once): it is tried again after these delays, then dropped.
STATUS_RETRY_DELAYS = (0.5, 2.0, 10.0)

_RETRY = {"Retry-After": "5"}
_background: set[asyncio.Task[None]] = set()


def webhook_channels(channels: Mapping[str, Channel]) -> dict[str, WebhookChannel]:
    """The channels a vendor calls, by address."""
    return {address: c for address, c in channels.items() if isinstance(c, WebhookChannel)}


_ROUTE: dict[str, Any] = {
    "http_method": ["GET", "POST"],
    "opt": {"public": True},  # vendors sign their requests; there is no bearer token to check
    "include_in_schema": False,
    "request_max_body_size": WEBHOOK_MAX_BYTES,
}


@route("/webhooks/{kind:str}", name="channel-webhook", **_ROUTE)
async def default_account_webhook(
    request: Request[Any, Any, Any], services: ServicesDep, kind: FromPath[str]
) -> Response[Any]:
    """The webhook of a channel's ``default`` account (its top-level settings keys)."""
    return await serve_webhook(request, services, kind, DEFAULT_ACCOUNT)


@route("/webhooks/{kind:str}/{account:str}", name="channel-account-webhook", **_ROUTE)
async def account_webhook(
    request: Request[Any, Any, Any], services: ServicesDep, kind: FromPath[str], account: FromPath[str]
) -> Response[Any]:
    """The webhook of one named account (``channels.<kind>.accounts.<account>``)."""
    return await serve_webhook(request, services, kind, account)


#: Both webhook routes, for the app.
WEBHOOK_ROUTES = [default_account_webhook, account_webhook]


async def serve_webhook(request: Request[Any, Any, Any], services: Services, kind: str, account: str) -> Response[Any]:
    address = channel_address(kind, account)
    channel = services.channels.get(address)
    if not isinstance(channel, WebhookChannel):
        WEBHOOK_REJECTED.labels(address if channel is not None else "unknown", "not_served").inc()
        served = ", ".join(sorted(webhook_path(*_split(a)) for a in webhook_channels(services.channels))) or "none"
        return problem_response(404, f"no channel {address!r} is served here (webhooks served: {served})")
    started = time.perf_counter()
    try:
        body = await request.body()
    except Exception as exc:  # 413 from the size limit, or a client that went away
        status = getattr(exc, "status_code", 400)
        WEBHOOK_REJECTED.labels(address, "too_large" if status == 413 else "unreadable").inc()
        if status == 413:
            return problem_response(413, f"a webhook body is limited to {WEBHOOK_MAX_BYTES} bytes")
        return problem_response(400, "the request body could not be read")
    webhook = WebhookRequest(
        method=request.method,
        path=request.url.path,
        headers={k.lower(): v for k, v in request.headers.items()},
        query={k: v for k, v in request.query_params.items()},
        body=body,
        received_at=time.time(),
    )
    if request.method == "GET":
        return _handshake(channel, webhook, address)
    try:
        channel.verify(webhook)
    except SignatureInvalid as exc:
        WEBHOOK_REJECTED.labels(address, "signature").inc()
        log.warning("webhook %s refused: %s", address, exc)
        return problem_response(401, str(exc) or "the request's signature is missing or wrong")
    try:
        decoded = channel.decode(webhook)
    except PayloadInvalid as exc:
        WEBHOOK_REJECTED.labels(address, "payload").inc()
        return problem_response(400, f"the body is not a valid {kind} webhook: {exc}")
    except Exception as exc:  # a connector's bug must not become a 500 the vendor retries forever
        WEBHOOK_REJECTED.labels(address, "decode_error").inc()
        log.exception("webhook %s: the channel failed to decode a signed body", address, exc_info=exc)
        return problem_response(400, f"the {kind} channel could not read this body ({type(exc).__name__})")
    host = services.channel_host
    for taker, items in [(address, decoded), *_for_other_accounts(decoded, webhook, kind, address, services)]:
        answer = await _accept_all(items, address=taker, host=host, store=services.store)
        if answer is not None:
            return answer
        taker_channel = services.channels[taker]
        if isinstance(taker_channel, AcknowledgingChannel):
            _in_background(_acknowledge(taker_channel, items, taker))
    WEBHOOK_LATENCY.labels(address).observe(time.perf_counter() - started)
    return Response({"ok": True}, status_code=200)


def _for_other_accounts(
    decoded: Sequence[Decoded], request: WebhookRequest, kind: str, address: str, services: Services
) -> list[tuple[str, Sequence[Decoded]]]:
    """Events for another account of this kind, decoded by that account: ``[(address, items)]``.

    A vendor may send every account's events to one URL (one Meta app, several
    WhatsApp numbers): the addressed channel marks those ``Ignored(OTHER_ACCOUNT)``,
    and each other account of the kind whose signature check passes takes its own.
    """
    if not any(isinstance(item, Ignored) and item.reason == OTHER_ACCOUNT for item in decoded):
        return []
    taken: list[tuple[str, Sequence[Decoded]]] = []
    for other, channel in webhook_channels(services.channels).items():
        if other == address or _split(other)[0] != kind:
            continue
        try:
            channel.verify(request)
            items = [i for i in channel.decode(request) if not (isinstance(i, Ignored) and i.reason == OTHER_ACCOUNT)]
        except Exception:  # signed with another secret, or unreadable to it: not this account's
            continue
        if items:
            taken.append((other, items))
    return taken


async def _accept_all(
    decoded: Sequence[Decoded], *, address: str, host: ChannelHost | None, store: Store
) -> Response[Any] | None:
    """Accept every message and status of one request; an error answer, or None for 200."""
    for item in decoded:
        if isinstance(item, Ignored):
            WEBHOOK_IGNORED.labels(address, item.reason).inc()
        elif isinstance(item, StatusUpdate):
            DELIVERY_STATUSES.labels(address, item.status).inc()
            if item.status == "failed":  # the vendor took it, then could not deliver it
                DELIVERY_FAILURES.labels(address, item.code or "failed_status").inc()
            if not await _apply_status(store, address, item):
                _in_background(_apply_status_later(store, address, item))
        elif host is None:
            return problem_response(503, "this node cannot take messages (no runtime)", headers=_RETRY)
        else:
            failed = await _accept(host, address, item)
            if failed is not None:
                return failed
    return None


async def _accept(host: ChannelHost, address: str, item: Incoming) -> Response[Any] | None:
    contact = await host.resolve_contact(address, item.sender, name=item.sender_name, locale=item.locale)
    text = item.text[: host.max_message_chars]
    message = InboundText(
        channel=address,
        message_id=item.message_id,
        text=text,
        contact=contact,
        at=item.at or _now_iso(),
        sender=item.sender,
        choice=item.choice,
        attachments=item.attachments,
        parts=item.parts,
        raw=item.raw or None,
    )
    try:
        # Durable once logged: the hand-over to the conversation follows in the background.
        await host.enqueue(message)
    except Exception as exc:
        # Not even logged (the database failed): the vendor's redelivery of the same id tries again.
        WEBHOOK_REJECTED.labels(address, "unavailable").inc()
        log.warning("webhook %s: message %s not handed over yet: %s", address, item.message_id, type(exc).__name__)
        return problem_response(503, "the message could not be accepted now; deliver it again", headers=_RETRY)
    return None


def _handshake(channel: Channel, request: WebhookRequest, address: str) -> Response[Any]:
    if not isinstance(channel, HandshakeChannel):
        return problem_response(405, f"the {address} webhook takes POST requests", headers={"Allow": "POST"})
    answer = channel.handshake(request)
    if answer.status >= 400:
        WEBHOOK_REJECTED.labels(address, "handshake").inc()
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type or MediaType.TEXT)


async def _apply_status(store: Store, address: str, item: StatusUpdate) -> bool:
    detail = item.detail if item.status == "failed" else ""
    apply = store.apply_delivery_status
    return await store.in_write_thread(apply, address, item.channel_message_id, item.status, detail)


async def _apply_status_later(store: Store, address: str, item: StatusUpdate) -> None:
    for delay in STATUS_RETRY_DELAYS:
        await asyncio.sleep(delay)
        if await _apply_status(store, address, item):
            return
    log.info("webhook %s: no reply %s for its %s status", address, item.channel_message_id, item.status)


async def _acknowledge(channel: AcknowledgingChannel, decoded: Sequence[Decoded], address: str) -> None:
    try:
        await channel.acknowledge(decoded)
    except Exception as exc:  # the customer's spinner, not their message: log and go on
        log.warning("webhook %s: acknowledging to the vendor failed: %s: %s", address, type(exc).__name__, exc)


def _in_background(work: Any) -> None:
    task = asyncio.get_running_loop().create_task(work)
    _background.add(task)
    task.add_done_callback(_background.discard)


def _split(address: str) -> tuple[str, str]:
    kind, _, account = address.partition(":")
    return kind, account or DEFAULT_ACCOUNT


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()
