"""The report arithmetic: percentiles, what a hand-off's events measure, and which range a measurement is in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.people.reports import LogEvent, Rating, average, compute, percentile

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = (T0 - timedelta(days=1), T0 + timedelta(days=1))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def events(conversation: str, *lines: tuple[str, float, str]) -> list[LogEvent]:
    """(kind, seconds, agent-or-queue) lines of one conversation, in order."""
    found = []
    for seq, (kind, seconds, who) in enumerate(lines, start=1):
        is_queue = kind == "handoff"
        found.append(
            LogEvent(conversation, seq, kind, at(seconds), agent="" if is_queue else who, queue=who if is_queue else "")
        )
    return found


def test_percentiles_are_nearest_rank_and_none_without_values() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert percentile([float(v) for v in range(1, 11)], 0.9) == 9.0
    assert percentile([float(v) for v in range(1, 101)], 0.9) == 90.0
    assert average([5, 4, 4]) == 4.33 and average([]) is None


def test_first_reply_and_resolution_run_from_the_agent_getting_it() -> None:
    lines = events(
        "c1",
        ("handoff", 0, "tier1"),
        ("assigned", 120, "7"),
        ("reply", 150, "7"),
        ("reply", 400, "7"),
        ("resolved", 900, ""),
    )
    report = compute(lines, [], *DAY)
    (agent,) = report.agents
    assert (agent.agent, agent.handled, agent.first_reply, agent.resolution) == ("7", {"c1"}, [30.0], [780.0])
    (queue,) = report.queues
    assert (queue.queue, queue.handoffs, queue.assignment_wait, queue.abandoned) == ("tier1", 1, [120.0], 0)


def test_taking_by_replying_counts_the_wait_from_the_queue_entry() -> None:
    report = compute(events("c2", ("handoff", 0, "tier1"), ("reply", 45, "8"), ("handoff_resolved", 60, "")), [], *DAY)
    (agent,) = report.agents
    assert (agent.first_reply, agent.resolution) == ([45.0], [60.0])
    assert report.queues[0].assignment_wait == [45.0]


def test_a_transfer_starts_a_new_wait_and_a_new_holder() -> None:
    lines = events(
        "c3",
        ("handoff", 0, "billing"),
        ("assigned", 10, "7"),
        ("handoff", 20, "tier1"),
        ("assigned", 50, "8"),
        ("reply", 52, "7"),  # the old holder's late line is not the new holder's reply
        ("reply", 60, "8"),
    )
    report = compute(lines, [], *DAY)
    agents = {a.agent: a for a in report.agents}
    assert agents["7"].first_reply == [] and agents["8"].first_reply == [10.0]
    assert {q.queue: q.assignment_wait for q in report.queues} == {"billing": [10.0], "tier1": [30.0]}


def test_ending_while_waiting_is_abandoned_and_ending_while_held_is_not() -> None:
    waiting = events("c4", ("handoff", 0, "tier1"), ("ended", 300, ""))
    held = events("c5", ("handoff", 0, "tier1"), ("assigned", 5, "7"), ("ended", 300, ""))
    cancelled = events("c6", ("handoff", 0, "tier1"), ("handoff_cancelled", 5, ""), ("ended", 300, ""))
    (queue,) = compute([*waiting, *held, *cancelled], [], *DAY).queues
    assert (queue.handoffs, queue.abandoned) == (3, 1)


def test_a_reply_without_a_hand_off_is_nobody_s_holding() -> None:
    assert compute(events("c7", ("reply", 0, "7")), [], *DAY).agents == []


def test_a_measurement_is_in_the_range_of_its_closing_event() -> None:
    lines = events("c8", ("handoff", 0, "tier1"), ("assigned", 3600, "7"), ("reply", 7300, "7"))
    first_hour = compute(lines, [], T0, at(3600))
    assert first_hour.queues[0].handoffs == 1 and first_hour.queues[0].assignment_wait == []
    assert first_hour.agents == []
    second_hour = compute(lines, [], at(3600), at(7200))
    assert second_hour.queues[0].assignment_wait == [3600.0] and second_hour.agents[0].handled == {"c8"}
    assert second_hour.agents[0].first_reply == []  # its reply came after the range
    third = compute(lines, [], at(7200), at(10800))
    assert third.agents[0].first_reply == [3700.0]


def test_lines_are_taken_in_log_order_whatever_order_they_come_in() -> None:
    lines = events("c9", ("handoff", 0, "tier1"), ("assigned", 10, "7"), ("resolved", 70, ""))
    assert compute(reversed(lines), [], *DAY).agents[0].resolution == [60.0]


def test_ratings_count_for_their_agent_and_queue_in_the_range() -> None:
    ratings = [
        Rating(5, at(10), "7", "tier1"),
        Rating(3, at(20), "7", "tier1"),
        Rating(1, at(30), None, "tier1"),
        Rating(4, at(-10), "7", "tier1"),  # before the range
    ]
    report = compute([], ratings, T0, at(3600))
    assert report.agents[0].ratings == [5, 3]
    assert report.queues[0].ratings == [5, 3, 1]
