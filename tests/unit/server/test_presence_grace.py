"""Presence: set and published; dropped to offline when the last socket has been gone for the grace period."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.people.queues import AdminQueue, capacity_of, members_of, merge, open_queue, queues_of
from engine.people.settings import QueueSpec
from engine.server.agent_hub import AgentHub
from engine.server.presence import Presence
from engine.store import Store
from engine.store.tables import UserAccount


@pytest.fixture(name="fx_store")
def fixture_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'flowdesk.db'}")
    store.upgrade()
    yield store
    store.close()


def user(store: Store) -> int:
    from sqlmodel import Session

    with Session(store.engine, expire_on_commit=False) as session:
        row = UserAccount(email="ana@example.com", display_name="Ana", role="agent", password_hash="x")
        session.add(row)
        session.commit()
        assert row.id is not None
        return row.id


def rig(store: Store) -> tuple[Presence, list[dict[str, Any]], list[int]]:
    hub = AgentHub()
    events: list[dict[str, Any]] = []
    hub.subscribe(events.append)
    pokes: list[int] = []
    presence = Presence(store, hub, grace_s=lambda: 0.01, on_online=lambda: pokes.append(1))
    return presence, events, pokes


async def published(events: list[dict[str, Any]], count: int) -> dict[str, Any]:
    """The ``count``-th event the hub delivered (it delivers from a task of its own)."""
    while len(events) < count:
        await asyncio.sleep(0.01)
    return events[count - 1]


async def test_set_stores_publishes_and_pokes_on_online(fx_store: Store) -> None:
    ana = user(fx_store)
    presence, events, pokes = rig(fx_store)
    assert await presence.set(ana, "online", by="user:1") is True
    assert fx_store.get_presence(ana)[0] == "online"  # type: ignore[index]
    first = await asyncio.wait_for(published(events, 1), 30)
    assert first["kind"] == "presence" and first["data"]["presence"] == "online"
    assert pokes == [1]
    await presence.set(ana, "away")
    second = await asyncio.wait_for(published(events, 2), 30)
    assert pokes == [1] and second["data"] == {
        "user_id": ana,
        "agent_id": str(ana),
        "presence": "away",
        "before": "online",
        "by": "",
    }
    assert await presence.set(4242, "online") is False
    with pytest.raises(ValueError, match="busy"):
        await presence.set(ana, "busy")


async def test_the_last_socket_gone_for_the_grace_period_is_offline(fx_store: Store) -> None:
    ana = user(fx_store)
    presence, _events, _pokes = rig(fx_store)
    await presence.set(ana, "online")
    presence.connected(ana)
    presence.connected(ana)  # two tabs
    presence.disconnected(ana)
    assert not presence._dropping  # one tab is still open
    presence.disconnected(ana)
    await presence._dropping[ana]
    assert fx_store.get_presence(ana)[0] == "offline"  # type: ignore[index]


async def test_a_socket_back_within_the_grace_period_keeps_presence(fx_store: Store) -> None:
    ana = user(fx_store)
    presence, _events, _pokes = rig(fx_store)
    await presence.set(ana, "online")
    presence.connected(ana)
    presence.disconnected(ana)
    pending = presence._dropping[ana]
    presence.connected(ana)  # a reload
    with pytest.raises(asyncio.CancelledError):
        await pending
    assert fx_store.get_presence(ana)[0] == "online"  # type: ignore[index]
    await presence.aclose()


def test_queues_merge_settings_over_admin_and_resolve_emails() -> None:
    settings = {"support": QueueSpec(name="support", member_emails=("ana@example.com", "who@example.com"))}
    admin = [AdminQueue(name="support", members=(9,)), AdminQueue(name="vip", members=(2, 3), capacity=2)]
    merged = merge(settings, admin, {"ana@example.com": 1})
    assert list(merged) == ["support", "vip"]
    assert merged["support"].source == "settings" and merged["support"].member_ids == (1,)  # unknown e-mail dropped
    assert merged["vip"].source == "admin" and merged["vip"].member_ids == (2, 3)
    assert queues_of(2, merged) == {"vip"} and queues_of(1, merged) == {"support"}
    assert members_of(open_queue("tech"), [3, 1]) == (1, 3)  # nobody described it: every agent
    assert capacity_of(None, merged["vip"], 5) == 2 and capacity_of(4, merged["vip"], 5) == 4
    assert capacity_of(None, merged["support"], 5) == 5
