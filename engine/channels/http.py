"""HTTP for channel connectors: one client per loop, and vendor answers as channel errors.

Retries belong to the deliver activity (Temporal), which reads what a send raised:
a 429 is :class:`ChannelThrottled` with the vendor's ``Retry-After``; a 5xx, a
timeout or a dropped connection is :class:`ChannelUnavailable`; any other 4xx is
:class:`DeliveryRejected` (sending it again would fail again). The client's own
retries are off so a vendor is never called more often than the activity says.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Mapping
from typing import Any

import httpx

from engine.channels.errors import ChannelThrottled, ChannelUnavailable, DeliveryRejected

#: One send; a vendor slower than this is treated as unavailable and retried. Below the
#: deliver activity's 10 s, so the channel says why rather than being cancelled mid-send.
SEND_TIMEOUT = httpx.Timeout(8.0, connect=5.0)
#: When a 429 names no time: wait this long before the next attempt.
DEFAULT_RETRY_AFTER = 5.0
#: Longest wait a vendor's Retry-After may ask for; beyond it the activity's back-off decides.
MAX_RETRY_AFTER = 600.0

_clients: dict[int, httpx.AsyncClient] = {}


def http_client() -> httpx.AsyncClient:
    """The shared client of the running event loop (clients are bound to the loop they run on)."""
    loop = id(asyncio.get_running_loop())
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            timeout=SEND_TIMEOUT, follow_redirects=False, transport=httpx.AsyncHTTPTransport(retries=0)
        )
        _clients[loop] = client
    return client


async def aclose_clients() -> None:
    """Close the running loop's client (a node or worker calls this as it stops)."""
    client = _clients.pop(id(asyncio.get_running_loop()), None)
    if client is not None:
        await client.aclose()


async def post_json(
    url: str, body: Mapping[str, Any] | list[Any], *, headers: Mapping[str, str] | None = None, vendor: str
) -> httpx.Response:
    """POST ``body`` as JSON; a vendor error is raised as the channel error it stands for."""
    return await send_request(http_client().build_request("POST", url, json=body, headers=headers), vendor=vendor)


async def post_bytes(url: str, body: bytes, *, headers: Mapping[str, str], vendor: str) -> httpx.Response:
    """POST exactly ``body`` (a signed payload: the bytes signed are the bytes sent)."""
    request = http_client().build_request("POST", url, content=body, headers=dict(headers))
    return await send_request(request, vendor=vendor)


async def send_request(request: httpx.Request, *, vendor: str) -> httpx.Response:
    """Send ``request``; no answer, or a non-2xx one, is raised as the channel error it stands for."""
    response = await send_raw(request, vendor=vendor)
    raise_for_status(response, vendor=vendor)
    return response


async def send_raw(request: httpx.Request, *, vendor: str) -> httpx.Response:
    """Send ``request`` and return whatever the vendor answered; only no answer is raised.

    For a channel that reads the vendor's own error format before deciding what an
    answer means. The messages never carry the URL (it may hold a token).
    """
    try:
        return await http_client().send(request)
    except httpx.TimeoutException:
        raise ChannelUnavailable(f"{vendor} did not answer in time") from None
    except httpx.TransportError as exc:
        raise ChannelUnavailable(f"{vendor} could not be reached: {type(exc).__name__}") from None


def raise_for_status(response: httpx.Response, *, vendor: str) -> None:
    """The channel error a vendor's non-2xx answer stands for (the body's first 200 characters say why).

    Redirects are not followed (a signed request must not be replayed elsewhere), so a
    3xx is refused for good like any other answer that is not a success.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    said = response.text[:200].strip()
    detail = f"{vendor} answered {status}" + (f": {said}" if said else "")
    if status == 429:
        raise ChannelThrottled(detail, retry_after(response.headers.get("retry-after")))
    if status >= 500 or status == 408:
        raise ChannelUnavailable(detail)
    if 300 <= status < 400:
        detail += "; a redirect is not an answer: configure the final URL"
    raise DeliveryRejected(detail, code=str(status))


def retry_after(value: str | None, *, now: float | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), bounded."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
