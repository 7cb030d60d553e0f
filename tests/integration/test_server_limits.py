"""Every connection to a node gets an answer or is closed in bounded time, whatever it sends.

Raw sockets against a running node: oversized upgrade headers, request heads that
never complete (slowloris), and that the deadline on the head leaves ordinary
requests and open WebSockets alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from temporalio.testing import WorkflowEnvironment

from engine.server.http_limits import HEAD_TIMEOUT
from tests.integration.server_support import RunningNode, chat, running_node

UPGRADE = (
    "GET /ws/chat HTTP/1.1\r\n"
    "Host: {host}\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
)


@pytest.fixture
async def node(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[RunningNode]:
    async with running_node(fx_dev_env, tmp_path) as running:
        yield running


@asynccontextmanager
async def raw(node: RunningNode) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    address = urlsplit(node.url)
    assert address.hostname is not None and address.port is not None
    reader, writer = await asyncio.open_connection(address.hostname, address.port, limit=1 << 20)
    try:
        yield reader, writer
    finally:
        writer.close()


async def read_until_closed(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sends until it closes the connection; fails if it is still open after ``within``."""
    try:
        return await asyncio.wait_for(reader.read(), within)
    except TimeoutError:
        pytest.fail(f"the server neither answered nor closed the connection within {within} s")


def host(node: RunningNode) -> str:
    return str(urlsplit(node.url).netloc)


@pytest.mark.parametrize("size", [10_000, 70_000], ids=["10KB", "70KB"])
async def test_an_upgrade_with_an_oversized_header_gets_a_4xx_and_is_closed(node: RunningNode, size: int) -> None:
    async with raw(node) as (reader, writer):
        writer.write((UPGRADE.format(host=host(node)) + f"X-Big: {'a' * size}\r\n\r\n").encode())
        await writer.drain()
        answer = await read_until_closed(reader, 2)
    status = answer.split(b"\r\n", 1)[0]
    assert status.startswith(b"HTTP/1.1 4"), answer[:200]


async def test_half_a_request_line_is_closed_after_the_head_deadline(node: RunningNode) -> None:
    async with raw(node) as (reader, writer):
        started = time.monotonic()
        writer.write(b"GET / HT")
        await writer.drain()
        answer = await read_until_closed(reader, HEAD_TIMEOUT + 2)
    assert time.monotonic() - started >= HEAD_TIMEOUT - 0.5
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]


async def test_headers_that_never_end_are_closed_after_the_head_deadline(node: RunningNode) -> None:
    async with raw(node) as (reader, writer):
        writer.write(f"GET /readyz HTTP/1.1\r\nHost: {host(node)}\r\n".encode())
        # A header line a second keeps the connection busy, but the head never completes.
        trickle = asyncio.create_task(_trickle(writer))
        try:
            answer = await read_until_closed(reader, HEAD_TIMEOUT + 2)
        finally:
            trickle.cancel()
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]


async def _trickle(writer: asyncio.StreamWriter) -> None:
    for index in range(60):
        writer.write(f"X-Slow-{index}: x\r\n".encode())
        await writer.drain()
        await asyncio.sleep(1)


async def test_a_plain_request_with_a_10kb_header_is_answered(node: RunningNode) -> None:
    async with raw(node) as (reader, writer):
        writer.write(
            f"GET /readyz HTTP/1.1\r\nHost: {host(node)}\r\nX-Big: {'a' * 10_000}\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        answer = await read_until_closed(reader, 2)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


async def test_a_keep_alive_connection_gets_a_new_deadline_for_its_next_head(node: RunningNode) -> None:
    async with raw(node) as (reader, writer):
        writer.write(f"GET /readyz HTTP/1.1\r\nHost: {host(node)}\r\n\r\n".encode())
        await writer.drain()
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert first.startswith(b"HTTP/1.1 200")
        # Start the next request and never finish it: uvicorn's keep-alive timer alone
        # is cancelled by these bytes; the head deadline still closes the connection.
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        await read_until_closed(reader, HEAD_TIMEOUT + 2)


async def test_chat_works_and_an_idle_open_websocket_outlives_the_head_deadline(node: RunningNode) -> None:
    async with chat(node) as visitor:
        await visitor.next("welcome")
        await visitor.next("history")
        await asyncio.sleep(HEAD_TIMEOUT + 1.5)
        await visitor.say("still here?")
        await visitor.reply_to("got still here?")
