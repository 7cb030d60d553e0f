"""The assignment policy: most free capacity first, ties round robin, arrival order, never over capacity."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from engine.people.assignment import Assignment, Candidate, Waiting, arrival_order, plan

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def waits(*ids: str) -> list[Waiting]:
    return [Waiting(cid, T0 + timedelta(seconds=i)) for i, cid in enumerate(ids)]


def test_the_oldest_wait_goes_first_and_to_the_freest_agent() -> None:
    result = plan(waits("c1", "c2"), [Candidate("a", load=2, capacity=3), Candidate("b", load=0, capacity=3)])
    # b has 3 free, a has 1: b gets c1; then b has 2 free, still more than a: b gets c2.
    assert result.assignments == (Assignment("c1", "b"), Assignment("c2", "b"))
    assert result.waiting == ()
    assert result.loads == {"a": 2, "b": 2}


def test_two_agents_capacity_one_three_handoffs_two_assigned_one_waits() -> None:
    result = plan(waits("c1", "c2", "c3"), [Candidate("a", 0, 1), Candidate("b", 0, 1)])
    assert {a.agent_id for a in result.assignments} == {"a", "b"}
    assert [a.conversation_id for a in result.assignments] == ["c1", "c2"]
    assert result.waiting == ("c3",)


def test_nobody_with_free_capacity_leaves_everything_waiting_in_order() -> None:
    result = plan(waits("c1", "c2"), [Candidate("a", 1, 1), Candidate("b", 4, 3)])
    assert result.assignments == ()
    assert result.waiting == ("c1", "c2")
    assert plan(waits("c1"), []).waiting == ("c1",)


def test_ties_go_round_robin_from_the_cursor() -> None:
    agents = [Candidate("a", 0, 5), Candidate("b", 0, 5), Candidate("c", 0, 5)]
    first = plan(waits("c1"), agents)
    assert first.assignments == (Assignment("c1", "a"),) and first.cursor == "a"
    second = plan(waits("c2"), agents, cursor=first.cursor)
    assert second.assignments == (Assignment("c2", "b"),)
    third = plan(waits("c3"), agents, cursor="c")
    assert third.assignments == (Assignment("c3", "a"),)  # wraps around


def test_equal_loads_spread_evenly() -> None:
    agents = [Candidate(x, 0, 10) for x in "abcd"]
    result = plan(waits(*(f"c{i}" for i in range(8))), agents)
    assert Counter(a.agent_id for a in result.assignments) == {"a": 2, "b": 2, "c": 2, "d": 2}


def test_priority_goes_before_arrival() -> None:
    items = [Waiting("old", T0), Waiting("urgent", T0 + timedelta(seconds=5), priority=2)]
    assert [w.conversation_id for w in arrival_order(items)] == ["urgent", "old"]
    assert plan(items, [Candidate("a", 0, 1)]).assignments == (Assignment("urgent", "a"),)


def test_a_repeated_candidate_counts_once() -> None:
    result = plan(waits("c1", "c2"), [Candidate("a", 0, 1), Candidate("a", 0, 1)])
    assert result.assignments == (Assignment("c1", "a"),) and result.waiting == ("c2",)


@given(
    loads=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=6),
    count=st.integers(0, 20),
    cursor=st.one_of(st.none(), st.sampled_from(["a0", "a3", "zz"])),
)
def test_never_over_capacity_and_assigns_all_it_can(
    loads: list[tuple[int, int]], count: int, cursor: str | None
) -> None:
    agents = [Candidate(f"a{i}", load, cap) for i, (load, cap) in enumerate(loads)]
    items = waits(*(f"c{i:02}" for i in range(count)))
    result = plan(items, agents, cursor=cursor)
    given_to = Counter(a.agent_id for a in result.assignments)
    for agent in agents:
        assert agent.load + given_to[agent.agent_id] <= max(agent.capacity, agent.load)
    room = sum(max(0, a.capacity - a.load) for a in agents)
    assert len(result.assignments) == min(count, room)
    # Everything is either assigned or waiting, once, and the oldest are the ones assigned.
    assigned = [a.conversation_id for a in result.assignments]
    assert assigned + list(result.waiting) == [w.conversation_id for w in items]
    # Most free first: at each step nobody had more room than the one chosen.
    free = {a.agent_id: a.capacity - a.load for a in agents}
    for assignment in result.assignments:
        assert free[assignment.agent_id] == max(free.values())
        free[assignment.agent_id] -= 1
