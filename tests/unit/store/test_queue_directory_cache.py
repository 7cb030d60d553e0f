"""The queue directory reads the queues once per short while, and a change on this node at once."""

from __future__ import annotations

import pytest

from engine.server.queues import QueueDirectory
from engine.settings import Settings
from engine.store import Store
from engine.store.tables import AgentQueue


def _directory(store: Store) -> QueueDirectory:
    settings = Settings.from_mapping({"queues": {"support": {"members": ["ann@example.com"]}}}, environ={})
    return QueueDirectory(store, lambda: settings)


def test_a_user_or_queue_changed_on_this_node_counts_at_once(fx_store: Store) -> None:
    directory = _directory(fx_store)
    assert directory.described_now()["support"].member_ids == ()
    ann = fx_store.create_user("ann@example.com", "a long password", role="agent", display_name="Ann")
    assert directory.described_now()["support"].member_ids == (ann.id,), "a new member is seen without waiting"
    fx_store.save_admin_queue(AgentQueue(name="billing", members=[ann.id]), create=True)
    assert directory.described_now()["billing"].member_ids == (ann.id,)
    fx_store.delete_admin_queue("billing")
    assert "billing" not in directory.described_now()


def test_requests_in_a_burst_read_the_queues_once(fx_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _directory(fx_store)
    reads: list[int] = []
    real = fx_store.list_admin_queues

    def counted() -> list[AgentQueue]:
        reads.append(1)
        return real()

    monkeypatch.setattr(fx_store, "list_admin_queues", counted)
    for _ in range(20):
        directory.described_now()
    assert len(reads) == 1
