"""People working a hand-off, in the pure interpreter: what the customer hears, what is logged, where the flow goes."""

from __future__ import annotations

import textwrap

from engine.flow.context import INTERPRETER_FEATURES, PEOPLE, FlowSet, InterpreterContext
from engine.flow.events import (
    AgentAccepted,
    AgentLabelled,
    AgentMessage,
    AgentNoted,
    AgentReopened,
    AgentResolved,
    AgentSnoozed,
    AgentTransferred,
    CallAI,
    LogEvent,
    NobodyAvailable,
    QueuePosition,
)
from engine.flow.model import CompiledFlow
from engine.flow.validate import compile_source
from engine.flowtest.simulate import Simulator

HANDOFF = """
flow: people
steps:
  listen: { wait: message }
  second: { wait: message }
  human:
    say: "Connecting you..."
    handoff: { queue: tier1, timeout: 10m }
    on_timeout: sorry
    next: after
  after: { say: "Anything else?", next: more }
  more: { wait: message, timeout: 30m, on_timeout: bye }
  again: { say: "flow got {{ message.text }}", next: more }
  sorry: { say: "Leave us a message.", next: more }
  bye: { say: "Bye", end: resolved }
"""

NO_ON_TIMEOUT = """
flow: plain
steps:
  listen: { wait: message }
  second: { wait: message }
  human:
    handoff: { queue: tier1, timeout: 10m }
    next: after
  after: { say: "Anything else?", next: listen }
"""


def flow(text: str) -> CompiledFlow:
    result = compile_source(textwrap.dedent(text), "t.yaml")
    assert result.flow is not None, [d.format() for d in result.diagnostics]
    return result.flow


def sim(text: str = HANDOFF, features: frozenset[str] = frozenset(INTERPRETER_FEATURES)) -> Simulator:
    f = flow(text)
    ctx = InterpreterContext(FlowSet([f]), features=features)

    def no_ai(call: CallAI, at: str) -> None:
        raise AssertionError("no AI in these flows")

    return Simulator(ctx, f, ai=no_ai, http=no_ai)


def handed_off(text: str = HANDOFF) -> Simulator:
    s = sim(text)
    s.user("hi")
    assert [m.text for m in s.user("I want a human")][-1].startswith(("Connecting", "You're in the queue"))
    assert s.state.status == "handoff"
    return s


def events(s: Simulator, status: str) -> list[LogEvent]:
    return [e for e in s.log.events if e.status == status]


def test_an_accept_announces_the_agent_by_name_and_logs_the_assignment() -> None:
    s = handed_off()
    sent = s.act(AgentAccepted("7", s.at, name="Anna", by="system"))
    assert [(m.text, m.sender) for m in sent] == [("Anna joined the conversation.", "system")]
    (assigned,) = events(s, "assigned")
    assert (assigned.text, assigned.sender, assigned.meta) == ("Anna", "agent:7", {"by": "system"})
    assert s.state.handoff["agent"] == "7"
    assert s.elapse(60 * 60_000) == []  # taken: the hand-off's timeout no longer runs


def test_a_reply_claims_an_unheld_hand_off_and_carries_the_agents_name() -> None:
    s = handed_off()
    sent = s.act(AgentMessage("7", "Hi, how can I help?", s.at, name="Anna"))
    assert [(m.text, m.sender) for m in sent] == [
        ("Anna joined the conversation.", "system"),
        ("Hi, how can I help?", "agent:7"),
    ]
    assert sent[1].meta == {"agent_name": "Anna"}
    assert s.state.handoff["agent"] == "7"
    assert [e.sender for e in events(s, "assigned")] == ["agent:7"]
    again = s.act(AgentMessage("7", "Still there?", s.at, name="Anna"))
    assert [m.text for m in again] == ["Still there?"]  # joined once


def test_a_note_is_logged_and_never_sent_even_while_the_bot_has_the_conversation() -> None:
    s = sim()
    s.user("hi")
    assert s.act(AgentNoted("7", "VIP customer", s.at, name="Anna")) == []
    s.user("I want a human")
    assert s.act(AgentNoted("7", "asked for a refund before", s.at)) == []
    assert [(e.text, e.sender) for e in events(s, "note")] == [
        ("VIP customer", "agent:7"),
        ("asked for a refund before", "agent:7"),
    ]
    assert len({e.id for e in events(s, "note")}) == 2  # two entries in the log, not one overwritten
    assert all("VIP" not in m.text for m in s.log.sent)
    assert all("VIP" not in t["text"] for t in s.state.transcript)  # nor does the AI see it


def test_labels_are_the_full_set_and_flows_read_them() -> None:
    s = handed_off()
    s.act(AgentLabelled("7", ("refund", "vip", "refund"), s.at))
    s.act(AgentLabelled("7", ("vip",), s.at))
    assert [e.meta["labels"] for e in events(s, "labels")] == [["refund", "vip"], ["vip"]]
    assert s.state.conversation["labels"] == ["vip"]


def test_a_snooze_is_logged_and_an_empty_one_unsnoozes() -> None:
    s = handed_off()
    s.act(AgentSnoozed("7", s.at, until="2026-01-06T09:00:00+00:00"))
    s.act(AgentSnoozed("7", s.at, until_reply=True))
    s.act(AgentSnoozed("7", s.at))
    assert [(e.status, e.meta) for e in s.log.events if e.status.endswith("snoozed")] == [
        ("snoozed", {"until": "2026-01-06T09:00:00+00:00", "until_reply": False}),
        ("snoozed", {"until": None, "until_reply": True}),
        ("unsnoozed", {"until": None, "until_reply": False}),
    ]
    assert s.state.status == "handoff"


def test_a_transfer_to_a_queue_releases_the_claim_and_waits_again_with_its_timeout() -> None:
    s = handed_off()
    s.act(AgentAccepted("7", s.at, name="Anna"))
    sent = s.act(AgentTransferred("billing", "7", s.at, reason="refund"))
    assert sent == [] and s.log.transfers == ["billing"]
    assert "agent" not in s.state.handoff and s.state.handoff["queue"] == "billing"
    # nobody takes it on billing: the hand-off's timeout applies again
    assert [m.text for m in s.elapse(10 * 60_000)] == ["Leave us a message."]


def test_a_transfer_to_an_agent_gives_it_to_them() -> None:
    s = handed_off()
    s.act(AgentAccepted("7", s.at, name="Anna"))
    sent = s.act(AgentTransferred("", "7", s.at, to_agent="9", to_name="Ben"))
    assert [m.text for m in sent] == ["Ben joined the conversation."]
    assert s.state.handoff["agent"] == "9" and s.state.handoff["queue"] == "tier1"
    assert [(e.sender, e.meta["by"]) for e in events(s, "assigned")] == [("agent:7", "7"), ("agent:9", "7")]


def test_resolve_is_logged_and_the_flow_continues_at_next() -> None:
    s = handed_off()
    s.act(AgentAccepted("7", s.at, name="Anna"))
    assert [m.text for m in s.act(AgentResolved("7", s.at))] == ["Anything else?"]
    (resolved,) = events(s, "handoff_resolved")
    assert (resolved.text, resolved.sender) == ("tier1", "agent:7")
    assert s.state.last_handoff == {"queue": "tier1", "agent": "7"}


def test_a_reopened_conversation_goes_back_to_its_queue_and_resumes_where_it_waited() -> None:
    s = handed_off()
    s.act(AgentAccepted("7", s.at, name="Anna"))
    s.act(AgentResolved("7", s.at))
    assert s.state.pending.step == "more" and s.state.pending.wait == "message"
    assert s.act(AgentReopened("7", s.at)) == []
    assert s.state.status == "handoff" and s.state.handoff["queue"] == "tier1"
    assert s.log.handoffs == ["tier1", "tier1"] and [e.text for e in events(s, "reopened")] == ["tier1"]
    assert s.user("one more thing") == []  # for the agent, not the flow
    s.act(AgentAccepted("8", s.at, name="Ben"))
    # resolved again: the flow waits at `more` as it did, and does not say "Anything else?" twice
    assert s.act(AgentResolved("8", s.at)) == []
    assert s.state.pending.step == "more" and s.state.pending.wait == "message"
    assert [m.text for m in s.user("thanks")] == ["flow got thanks"]
    # its timeout started over with the resume
    assert [m.text for m in s.elapse(30 * 60_000)] == ["Bye"]


def test_queue_position_and_nobody_available_are_told_in_the_customers_language() -> None:
    s = sim()
    s.user("你好")
    s.user("我要人工")
    assert [m.text for m in s.act(QueuePosition(3, s.at))] == ["您当前排在第 3 位。"]
    s2 = handed_off()
    assert [m.text for m in s2.act(QueuePosition(2, s2.at))] == ["You are number 2 in the queue."]
    assert [m.text for m in s2.act(NobodyAvailable(s2.at))] == ["Sorry, nobody is available to help you right now."]
    assert s2.state.status == "handoff"  # it waits: the queue's policy is to wait


def test_nobody_available_with_fall_through_takes_the_timeout_path_at_once() -> None:
    s = handed_off()
    s.user("hello?")
    sent = s.act(NobodyAvailable(s.at, fall_through=True))
    assert [m.text for m in sent] == [
        "Sorry, nobody is available to help you right now.",
        "Leave us a message.",
        "flow got hello?",  # what the customer wrote meanwhile goes back to the flow
    ]
    assert s.state.status == "active"


def test_fall_through_without_on_timeout_does_what_a_hand_off_timeout_does() -> None:
    s = handed_off(NO_ON_TIMEOUT)
    s.act(NobodyAvailable(s.at, fall_through=True))
    assert s.log.ended == "timed_out"


def test_conversations_started_before_people_keep_the_old_accept_and_reply() -> None:
    s = sim(features=frozenset(f for f in INTERPRETER_FEATURES if f != PEOPLE))
    s.user("hi")
    s.user("human")
    assert s.act(AgentAccepted("7", s.at, name="Anna")) == []
    reply = s.act(AgentMessage("7", "hello", s.at, name="Anna"))
    assert [(m.text, m.meta) for m in reply] == [("hello", {})]
    assert s.log.events == []


def test_every_new_event_crosses_continue_as_new() -> None:
    from engine.flow.events import event_from_dict, to_dict

    for event in (
        AgentNoted("7", "x", "t"),
        AgentLabelled("7", ("a",), "t"),
        AgentSnoozed("7", "t", until="u"),
        AgentReopened("7", "t", "q"),
        QueuePosition(2, "t"),
        NobodyAvailable("t", True),
        AgentTransferred("", "7", "t", to_agent="9", to_name="Ben"),
        AgentAccepted("7", "t", "Anna", "system"),
    ):
        back = event_from_dict(to_dict(event))
        assert to_dict(back) == to_dict(event)


def test_an_agent_action_while_not_handed_off_changes_nothing() -> None:
    s = sim()
    s.user("hi")
    assert s.act(AgentAccepted("7", s.at)) == [] and s.act(AgentResolved("7", s.at)) == []
    assert s.log.events == [] and s.state.status == "active"


CSAT = """
flow: rated
steps:
  listen: { wait: message }
  second: { wait: message }
  human:
    handoff: { queue: support }
    next: rate
  rate:
    csat: { question: "Rate {{ contact.name or 'us' }} from 1 to 5", thanks: "Thanks!" }
    save_as: rating
    timeout: 1h
    on_timeout: listen
  done: { say: "rating {{ vars.rating }}", next: listen }
"""


def test_csat_asks_with_buttons_and_logs_the_rating_with_the_agent_it_rates() -> None:
    s = handed_off(CSAT)
    s.act(AgentAccepted("7", s.at, name="Anna"))
    (question,) = s.act(AgentResolved("7", s.at))
    assert (question.text, question.choices) == ("Rate us from 1 to 5", ("1", "2", "3", "4", "5"))
    assert [m.text for m in s.user("4")] == ["Thanks!", "rating 4"]
    (rated,) = events(s, "csat")
    assert (rated.text, rated.meta) == ("4", {"rating": 4, "agent": "7", "queue": "support"})


def test_csat_reads_a_typed_number_and_goes_on_without_a_rating_otherwise() -> None:
    s = handed_off(CSAT)
    s.act(AgentAccepted("7", s.at))
    s.act(AgentResolved("7", s.at))
    assert [m.text for m in s.user(" 5. ")] == ["Thanks!", "rating 5"]
    s2 = handed_off(CSAT)
    s2.act(AgentResolved("7", s2.at))
    assert [m.text for m in s2.user("why do you ask?")] == ["rating None"]
    assert events(s2, "csat") == []


def test_csat_true_uses_the_settings_messages_in_the_customers_language() -> None:
    s = sim(
        CSAT.replace(
            """csat: { question: "Rate {{ contact.name or 'us' }} from 1 to 5", thanks: "Thanks!" }""", "csat: true"
        )
    )
    s.user("你好")
    s.user("人工")
    (question,) = s.act(AgentResolved("7", s.at))
    assert question.text == "请为本次服务打分：1（很差）到 5（很好）。"
    assert [m.text for m in s.user("3")][1:] == ["rating 3"]
