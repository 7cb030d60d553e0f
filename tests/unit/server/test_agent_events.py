"""The agents' stream's pure parts: the order rows are released in, who sees which event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from engine.people.roles import Principal, Role
from engine.server.agent_events import (
    CONVERSATION,
    GAP_WAIT_S,
    MESSAGE,
    PRESENCE,
    Event,
    SeqGate,
    Viewer,
    may_connect,
)

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)


def rows(*seqs: int) -> list[dict[str, Any]]:
    return [{"seq": s} for s in seqs]


def released(gate: SeqGate) -> list[int]:
    return [r["seq"] for r in gate.release()]


def test_rows_above_a_hole_wait_until_it_fills_then_go_out_in_order() -> None:
    gate = SeqGate()
    gate.reset(10)
    gate.take(rows(11, 13, 14), clock=T0, now=0.0)
    assert released(gate) == [11]  # 12 is a hole: 13 and 14 wait
    assert gate.cursor == 11 and gate.waiting_on() == [12]
    gate.take(rows(12), clock=T0, now=0.1)
    assert released(gate) == [12, 13, 14]
    assert gate.cursor == 14 and not gate.gaps


def test_a_hole_is_given_up_when_its_writers_are_gone_or_it_waited_too_long() -> None:
    gate = SeqGate()
    gate.reset(0)
    gate.take(rows(2), clock=T0, now=0.0)
    gate.expire(0.1, final_before=T0 - timedelta(seconds=1))  # writers seen before the hole: not enough
    assert released(gate) == []
    gate.expire(0.2, final_before=T0)  # none of the writers running when it was seen is left
    assert released(gate) == [2]
    gate.take(rows(5), clock=T0, now=1.0)
    gate.expire(1.0 + GAP_WAIT_S)
    assert released(gate) == [5] and gate.cursor == 5


def test_without_gap_tracking_holes_are_final_and_repeats_are_dropped() -> None:
    gate = SeqGate(track_gaps=False)
    gate.reset(3)
    gate.take(rows(3, 5, 9), clock=None, now=0.0)
    assert released(gate) == [5, 9]
    gate.take(rows(9, 10), clock=None, now=0.0)
    assert released(gate) == [10]


def event(kind: str, **fields: Any) -> Event:
    return Event(1, kind, {}, **fields)


def test_who_sees_what() -> None:
    ann = Principal(kind="user", agent_id="7", role=Role.AGENT, display_name="Ann", user_id=7)
    viewer = Viewer(ann, queues=frozenset({"billing"}), teammates=frozenset({7, 8}))
    assert viewer.sees(event(MESSAGE, queue="billing"))
    assert not viewer.sees(event(MESSAGE, queue="sales"))
    assert viewer.sees(event(CONVERSATION, queue="sales", assigned="7"))  # hers, wherever it is
    assert not viewer.sees(event(CONVERSATION, queue=None, assigned="8"))
    assert viewer.sees(event(PRESENCE, user_id=8)) and not viewer.sees(event(PRESENCE, user_id=9))
    boss = Viewer(Principal(kind="user", agent_id="1", role=Role.SUPERVISOR, display_name="B", user_id=1))
    assert boss.sees(event(MESSAGE, queue="sales")) and boss.sees(event(PRESENCE, user_id=9))
    assert not may_connect(Role.EDITOR) and may_connect(Role.AGENT)
