"""The per-visitor rate limit of the web-chat hub: bursts, refill, and no way around it by reconnecting."""

from __future__ import annotations

import time
from typing import Any, cast

from connectors.channels.webchat.hub import Connection, WebChatHub


def _connection(contact_id: str) -> Connection:
    return Connection(cast(Any, object()), contact_id)


def test_a_burst_is_allowed_then_the_rate_holds() -> None:
    hub = WebChatHub(rate=1000.0, burst=3)
    assert [hub.allow("v") for _ in range(3)] == [True, True, True]
    slow = WebChatHub(rate=0.001, burst=2)
    assert [slow.allow("v") for _ in range(3)] == [True, True, False]
    time.sleep(0.01)
    assert hub.allow("v")  # 1000 a second refill quickly


def test_reconnecting_does_not_reset_the_limit() -> None:
    hub = WebChatHub(rate=0.001, burst=2)
    socket = _connection("v")
    hub.add(socket)
    assert [hub.allow("v") for _ in range(3)] == [True, True, False]
    hub.remove(socket)
    hub.add(again := _connection("v"))
    assert not hub.allow("v")
    hub.remove(again)


def test_a_full_bucket_of_a_visitor_who_left_is_forgotten() -> None:
    hub = WebChatHub(rate=1000.0, burst=2)
    socket = _connection("v")
    hub.add(socket)
    hub.allow("v")
    time.sleep(0.01)  # refilled
    hub.remove(socket)
    assert "v" not in hub._buckets
