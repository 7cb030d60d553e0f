"""AI and HTTP calls heartbeat while they run, so a dead worker's call is retried within seconds."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, cast

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from engine.runtime.activities import HEARTBEAT_EVERY, ConversationActivities, heartbeating
from engine.runtime.ports import MessageLog
from engine.runtime.revisions import FlowCatalog
from engine.runtime.types import HttpInput

#: How long the slow call below takes.
SLOW = 2.5


def recording_env(*, local: bool = False) -> tuple[ActivityEnvironment, list[tuple[Any, ...]]]:
    env = ActivityEnvironment()
    if local:
        env.info = dataclasses.replace(env.info, is_local=True)
    beats: list[tuple[Any, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    return env, beats


async def test_a_slow_http_call_heartbeats_while_it_is_pending() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(SLOW)
        return httpx.Response(200, json={"ok": True})

    http = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    activities = ConversationActivities(
        cast(FlowCatalog, object()), channels={}, log=cast(MessageLog, object()), http=http
    )
    env, beats = recording_env()
    result = await env.run(activities.call_http, HttpInput(call={"method": "GET", "url": "http://vendor.test/slow"}))
    assert result["status"] == 200
    # About one a second while the request was pending: enough for a 4 s heartbeat timeout.
    assert len(beats) >= int(SLOW / HEARTBEAT_EVERY)
    # And none once it is over.
    count = len(beats)
    await asyncio.sleep(HEARTBEAT_EVERY * 1.5)
    assert len(beats) == count


async def test_heartbeats_stop_when_the_body_fails() -> None:
    env, beats = recording_env()

    async def failing() -> None:
        async with heartbeating():
            await asyncio.sleep(HEARTBEAT_EVERY * 1.5)
            raise RuntimeError("the call broke")

    with pytest.raises(RuntimeError, match="the call broke"):
        await env.run(failing)
    count = len(beats)
    assert count >= 1
    await asyncio.sleep(HEARTBEAT_EVERY * 1.5)
    assert len(beats) == count


async def test_a_local_activity_does_not_heartbeat() -> None:
    env, beats = recording_env(local=True)

    async def body() -> None:
        async with heartbeating():
            await asyncio.sleep(HEARTBEAT_EVERY * 1.5)

    await env.run(body)
    assert beats == []
