"""HTTP for AI providers: one shared client per profile, and vendor status codes as errors.

The clients' own retries are off: the fallback chain and Temporal own retries, so
a failing vendor is retried as the flow says and not behind its back. Timeouts are
the chain's (it cancels a call that runs past the provider's ``timeout``); the
client's timeout is only a backstop.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx

from engine.ai.types import (
    BadResponse,
    ProviderConfigError,
    ProviderTimeout,
    RateLimited,
    Rejected,
    Unauthorized,
    Unavailable,
)

#: Backstop for one request; the chain's own timeouts are shorter.
CLIENT_TIMEOUT = httpx.Timeout(120.0, connect=10.0)


class ClientPool:
    """One ``httpx.AsyncClient`` per provider profile (or per base URL without a profile)."""

    def __init__(self) -> None:
        self._clients: dict[tuple[int, str], httpx.AsyncClient] = {}

    def client(self, key: str) -> httpx.AsyncClient:
        # Clients are bound to the event loop they first ran on: key by loop as well.
        loop_key = (id(asyncio.get_running_loop()), key)
        client = self._clients.get(loop_key)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                timeout=CLIENT_TIMEOUT,
                follow_redirects=False,
                transport=httpx.AsyncHTTPTransport(retries=0),
            )
            self._clients[loop_key] = client
        return client

    async def aclose(self) -> None:
        """Close the clients of the running loop (a worker calls this as it stops)."""
        loop_id = id(asyncio.get_running_loop())
        for key in [k for k in self._clients if k[0] == loop_id]:
            await self._clients.pop(key).aclose()


CLIENTS = ClientPool()


def http_client(params: Mapping[str, Any]) -> httpx.AsyncClient:
    """The shared client for a provider's parameters (keyed by its profile, else its base URL)."""
    return CLIENTS.client(str(params.get("profile") or params.get("base_url") or "default"))


def require(params: Mapping[str, Any], name: str, provider: str) -> str:
    """A string parameter the provider cannot work without."""
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise ProviderConfigError(f"{provider}: `{name}` is not configured (set it in the AI profile)")
    return value


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str],
    body: Any,
    vendor: str,
    method: str = "POST",
) -> tuple[Any, float]:
    """Send ``body`` as JSON and return the decoded JSON answer and the latency in ms.

    Every non-2xx status and every network failure becomes the matching
    :class:`~engine.ai.types.ProviderError`; its message names the status and the
    vendor's error code, never the request.
    """
    started = time.perf_counter()
    try:
        if method == "GET":
            response = await client.get(url, headers=dict(headers), params=body)
        else:
            response = await client.request(method, url, headers=dict(headers), json=body)
    except httpx.TimeoutException:
        raise ProviderTimeout(f"{vendor}: no answer in time") from None
    except httpx.HTTPError as exc:
        # The exception text may contain the URL; name the failure's type only.
        raise Unavailable(f"{vendor}: request failed ({type(exc).__name__})") from None
    latency_ms = (time.perf_counter() - started) * 1000
    raise_for_status(response, vendor)
    return decode_json(response, vendor), latency_ms


def raise_for_status(response: httpx.Response, vendor: str) -> None:
    status = response.status_code
    if status < 300:
        return
    code = vendor_error_code(response)
    what = f"{vendor}: HTTP {status}" + (f" ({code})" if code else "")
    if status in (401, 403):
        raise Unauthorized(what, status=status, code=code)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise RateLimited(what, retry_after=retry_after, status=status, code=code)
    if status >= 500 or status in (408, 409):
        raise Unavailable(what, status=status, code=code)
    raise Rejected(what, status=status, code=code)


def decode_json(response: httpx.Response, vendor: str) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadResponse(f"{vendor}: the answer is not JSON (HTTP {response.status_code})") from None


def vendor_error_code(response: httpx.Response) -> str | None:
    """The vendor's machine-readable error code or type, if the body has one.

    Only short identifier-like values are returned: free-text messages can echo
    parts of the request, such as the key.
    """
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    candidates: list[Any] = []
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            candidates += [error.get("code"), error.get("type")]
        candidates += [body.get("code"), body.get("type"), body.get("error_code")]
    for value in candidates:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            text = str(value)
            if 0 < len(text) <= 64 and all(c.isalnum() or c in "_-." for c in text):
                return text
    return None


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: either delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def http_url(value: Any, vendor: str, example: str) -> str:
    """A configured ``base_url`` checked to be an http(s) URL, without its trailing slash.

    The value itself is never repeated in the error: a URL can carry credentials.
    """
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ProviderConfigError(f"{vendor}: `base_url` must be an http(s) URL such as {example}")
    return value.rstrip("/")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
