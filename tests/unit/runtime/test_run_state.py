"""A run's state crosses continue-as-new whole, through ConversationInput's compatible fields."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict

from temporalio.converter import DataConverter

from engine.flow.events import AgentTransferred, MessageReceived, TimerFired
from engine.flow.state import ConversationState, Pending
from engine.runtime.run_state import RunState
from engine.runtime.types import ConversationInput

T0 = "2026-01-05T10:00:00+00:00"


def _first_run() -> ConversationInput:
    return ConversationInput(
        conversation_id="c-1",
        flow="desk",
        revision="r1",
        channel="webchat",
        contact={"id": "k-1"},
        max_events_per_run=3,
        node_pickup_seconds=5.0,
        clock_offset_ms=1234,
        vars={"tier": "gold"},
        settings="s1",
    )


def _mid_conversation() -> RunState:
    run = RunState.of(_first_run())
    state = ConversationState(flow="desk", revision="r2", conversation={"id": "c-1"}, contact={"id": "k-1"}, clock=T0)
    state.status = "handoff"
    state.handoff = {"queue": "support", "step": "human", "held": []}
    state.pending = Pending("agent", "human", timer_id="timer-3")
    run.state = state
    run.events = deque([AgentTransferred("billing", "anna", T0, "refund"), TimerFired("timer-3", T0)])
    run.seen.update(dict.fromkeys(["m1", "m2"]))
    run.timers["timer-3"] = "2026-01-05T10:10:00+00:00"
    run.sent = 7
    run.live["desk"] = "r2"
    run.settings = "s2"
    run.holder = "anna"
    return run


def test_the_next_run_starts_with_everything_the_last_one_had() -> None:
    run = _mid_conversation()
    carried = run.carry_over(_first_run())
    # through Temporal's own payload converter, as continue-as-new sends it
    converter = DataConverter.default.payload_converter
    received = converter.from_payload(converter.to_payload(carried), ConversationInput)
    again = RunState.of(received)
    assert again.state is not None and run.state is not None
    assert again.state.to_dict() == run.state.to_dict()
    assert list(again.events) == list(run.events)
    assert list(again.seen) == ["m1", "m2"]
    assert again.timers == {"timer-3": "2026-01-05T10:10:00+00:00"}
    assert (again.sent, again.live, again.settings) == (7, {"desk": "r2"}, "s2")
    assert again.holder == "anna"  # the claim holds across runs: the next take is still refused
    # what is not the run's state stays as the conversation was started
    assert (received.conversation_id, received.channel, received.clock_offset_ms) == ("c-1", "webchat", 1234)
    assert (received.max_events_per_run, received.node_pickup_seconds) == (3, 5.0)
    assert (received.flow, received.revision) == ("desk", "r2")  # the revision it moved to


def test_a_run_continued_by_older_code_is_read_as_it_was_written() -> None:
    # an input as a run before settings revisions wrote it: no "settings" field at all
    older = asdict(_first_run())
    del older["settings"]
    older["backlog"] = [{"kind": "message", "message": {"id": "m3", "text": "hi"}, "at": T0}]
    converter = DataConverter.default.payload_converter
    received = converter.from_payload(converter.to_payload(older), ConversationInput)
    run = RunState.of(received)
    assert run.settings == ""  # the defaults, as those runs had
    assert run.holder == ""  # nobody: older runs kept no claim
    assert list(run.events) == [MessageReceived(message={"id": "m3", "text": "hi"}, at=T0)]
    assert run.state is None  # a new conversation: begun by the run
