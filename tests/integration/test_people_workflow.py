"""People working hand-offs on a real Temporal dev server: one claim wins, notes stay private, reopen resumes.

Every action goes through ``Conversations.agent`` (what the REST actions call), so the
errors asserted here are the ones the API maps to 409 and 422.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import uuid4

import pytest
from temporalio.testing import WorkflowEnvironment

from engine.runtime.client import AgentActionInvalid, AgentActionRefused, ConversationEnded, ConversationTaken
from engine.runtime.types import ActionAccepted, AgentAction
from tests.integration.runtime_support import Runtime, eventually, running_conversations

DESK_FLOW = """
flow: people-desk
steps:
  listen:
    wait: message
  route:
    switch:
      - if: "message.text is matching('(?i)human')"
        goto: human
    default: reply
  reply:
    say: "bot: {{ message.text }}"
    next: listen
  human:
    say: Connecting you with a colleague...
    handoff: { queue: support, timeout: 1h }
    on_timeout: leave_message
    next: back
  back:
    say: Thanks for your patience!
    next: listen
  leave_message:
    say: Please leave us a message and we will write back.
    next: listen
"""


def _conversation() -> str:
    return f"people-{uuid4().hex[:12]}"


async def _handed_off(rt: Runtime) -> str:
    conv = _conversation()
    await rt.send(conv, "human please")
    await rt.wait_step(conv, "human", waiting_for="agent")
    return conv


def _events(rt: Runtime, conv: str, status: str) -> list[tuple[str, str, dict[str, object]]]:
    return [(e.text, e.sender, e.meta) for e in rt.entries(conv, "event") if e.status == status]


async def test_two_agents_race_to_take_one_conversation_100_times_and_exactly_one_wins(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [DESK_FLOW]) as rt:
        winners: dict[str, str] = {}
        for batch in range(10):
            convs = await asyncio.gather(*(_handed_off(rt) for _ in range(10)))
            for conv in convs:
                results = await asyncio.gather(
                    rt.conversations.agent(conv, AgentAction("accept", "anna", name="Anna")),
                    rt.conversations.agent(conv, AgentAction("accept", "ben", name="Ben")),
                    return_exceptions=True,
                )
                won = [who for who, r in zip(("anna", "ben"), results, strict=True) if isinstance(r, ActionAccepted)]
                lost = [r for r in results if isinstance(r, ConversationTaken)]
                assert len(won) == 1 and len(lost) == 1, f"round {batch}: {results!r}"
                assert lost[0].holder == won[0]  # the loser is told who has it
                winners[conv] = won[0]
        assert len(winners) == 100
        # the customer heard exactly one agent join, the winner
        for conv, winner in winners.items():
            texts = await rt.channel.wait_texts(conv, 2)
            assert texts == ["Connecting you with a colleague...", f"{winner.title()} joined the conversation."]
        # and the log names the winner, once
        for conv, winner in list(winners.items())[:10]:
            await rt.wait_entries(conv, "event", 2)
            assert [s for _, s, _ in _events(rt, conv, "assigned")] == [f"agent:{winner}"]


async def test_a_reply_claims_a_waiting_conversation_and_another_agent_is_refused(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [DESK_FLOW]) as rt:
        conv = await _handed_off(rt)
        await rt.conversations.agent(conv, AgentAction("reply", "anna", text="Anna here, hi!", name="Anna"))
        with pytest.raises(ConversationTaken) as taken:
            await rt.conversations.agent(conv, AgentAction("reply", "ben", text="Ben here"))
        assert taken.value.holder == "anna"
        with pytest.raises(ConversationTaken):
            await rt.conversations.agent(conv, AgentAction("assign", "ben", by="system"))
        # a supervisor's reassign goes over the claim
        await rt.conversations.agent(conv, AgentAction("assign", "ben", name="Ben", by="7", force=True))
        await rt.conversations.agent(conv, AgentAction("reply", "ben", text="Ben took over.", name="Ben"))
        texts = await rt.channel.wait_texts(conv, 5)
        assert texts == [
            "Connecting you with a colleague...",
            "Anna joined the conversation.",
            "Anna here, hi!",
            "Ben joined the conversation.",
            "Ben took over.",
        ]
        replies = [m for m in rt.channel.sent if m.conversation_id == conv and m.sender.startswith("agent:")]
        assert [(m.sender, m.meta.get("agent_name")) for m in replies] == [("agent:anna", "Anna"), ("agent:ben", "Ben")]


async def test_notes_are_logged_and_never_delivered(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [DESK_FLOW]) as rt:
        conv = _conversation()
        await rt.send(conv, "hello")
        await rt.channel.wait_texts(conv, 1)
        await rt.conversations.agent(conv, AgentAction("note", "anna", text="SECRET-NOTE-1 while the bot talks"))
        await rt.send(conv, "human please")
        await rt.wait_step(conv, "human", waiting_for="agent")
        await rt.conversations.agent(conv, AgentAction("accept", "anna", name="Anna"))
        await rt.conversations.agent(conv, AgentAction("note", "anna", text="SECRET-NOTE-2 refund twice"))
        await rt.conversations.agent(conv, AgentAction("note", "ben", text="SECRET-NOTE-3 from a colleague"))
        await rt.conversations.agent(conv, AgentAction("reply", "anna", text="How can I help?"))
        assert (await rt.channel.wait_texts(conv, 4))[3] == "How can I help?"
        await eventually(lambda: len(_events(rt, conv, "note")) == 3, "three notes in the log")
        assert sorted(t for t, _, _ in _events(rt, conv, "note")) == [
            "SECRET-NOTE-1 while the bot talks",
            "SECRET-NOTE-2 refund twice",
            "SECRET-NOTE-3 from a colleague",
        ]
        # the deliver path never saw a note: no attempt, not even a refused one
        assert not any("SECRET-NOTE" in m.text for m in rt.channel.sent)
        assert rt.channel.attempts and all("note" not in key for key in rt.channel.attempts)
        with pytest.raises(AgentActionInvalid):
            await rt.conversations.agent(conv, AgentAction("note", "anna", text="   "))


async def test_a_reopened_conversation_resumes_where_the_flow_waited(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [DESK_FLOW]) as rt:
        conv = await _handed_off(rt)
        with pytest.raises(AgentActionRefused) as refused:
            await rt.conversations.agent(conv, AgentAction("reopen", "anna"))
        assert "handed off" in str(refused.value)
        await rt.conversations.agent(conv, AgentAction("accept", "anna", name="Anna"))
        await rt.conversations.agent(conv, AgentAction("resolve", "anna"))
        assert (await rt.channel.wait_texts(conv, 3))[2] == "Thanks for your patience!"
        await rt.wait_step(conv, "listen")

        await rt.conversations.agent(conv, AgentAction("reopen", "anna"))
        await rt.wait_step(conv, "listen", waiting_for="agent")
        await rt.send(conv, "one more question")  # for the agent now, not the bot
        await rt.conversations.agent(conv, AgentAction("accept", "ben", name="Ben"))
        await rt.conversations.agent(conv, AgentAction("resolve", "ben"))
        await rt.wait_step(conv, "listen")
        await rt.send(conv, "ok thanks")
        texts = await rt.channel.wait_texts(conv, 5)
        # resolved again: no second "Thanks for your patience!", the flow waits where it did
        assert texts[3:] == ["Ben joined the conversation.", "bot: ok thanks"]
        await eventually(lambda: len(_events(rt, conv, "handoff_resolved")) == 2, "two resolves logged")
        assert [t for t, _, _ in _events(rt, conv, "reopened")] == ["support"]
        assert [t for t, _, _ in _events(rt, conv, "handoff")] == ["support", "support"]


async def test_labels_snooze_and_a_transfer_to_an_agent(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [DESK_FLOW]) as rt:
        conv = await _handed_off(rt)
        await rt.conversations.agent(conv, AgentAction("accept", "anna", name="Anna"))
        await rt.conversations.agent(conv, AgentAction("labels", "anna", labels=["refund", "vip"]))
        await rt.conversations.agent(conv, AgentAction("snooze", "anna", until="2026-12-03T09:00:00+00:00"))
        await rt.conversations.agent(conv, AgentAction("snooze", "anna", until_reply=True))
        with pytest.raises(AgentActionInvalid):
            await rt.conversations.agent(conv, AgentAction("snooze", "anna", until="tomorrow"))
        await rt.conversations.agent(conv, AgentAction("transfer", "anna", to_agent="carl", to_name="Carl"))
        with pytest.raises(ConversationTaken) as taken:
            await rt.conversations.agent(conv, AgentAction("accept", "anna"))
        assert taken.value.holder == "carl"
        assert (await rt.channel.wait_texts(conv, 3))[2] == "Carl joined the conversation."
        await eventually(lambda: len(_events(rt, conv, "assigned")) == 2, "two assignments logged")
        assert [m["labels"] for _, _, m in _events(rt, conv, "labels")] == [["refund", "vip"]]
        assert [m for _, _, m in _events(rt, conv, "snoozed")] == [
            {"until": "2026-12-03T09:00:00+00:00", "until_reply": False},
            {"until": None, "until_reply": True},
        ]
        # to a queue: the claim is released, anyone of that queue may take it
        await rt.conversations.agent(conv, AgentAction("transfer", "carl", queue="billing"))
        await rt.conversations.agent(conv, AgentAction("accept", "dora", name="Dora"))
        assert (await rt.channel.wait_texts(conv, 4))[3] == "Dora joined the conversation."


async def test_position_and_nobody_available_with_fall_through(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [DESK_FLOW]) as rt:
        conv = await _handed_off(rt)
        await rt.conversations.agent(conv, AgentAction("position", position=3))
        await rt.conversations.agent(conv, AgentAction("unavailable"))
        assert (await rt.channel.wait_texts(conv, 3))[1:] == [
            "You are number 3 in the queue.",
            "Sorry, nobody is available to help you right now.",
        ]
        assert (await rt.step(conv))["status"] == "handoff"  # without fall-through it waits
        await rt.conversations.agent(conv, AgentAction("unavailable", fall_through=True))
        assert (await rt.channel.wait_texts(conv, 5))[3:] == [
            "Sorry, nobody is available to help you right now.",
            "Please leave us a message and we will write back.",
        ]
        await rt.wait_step(conv, "listen")
        with pytest.raises(AgentActionRefused):
            await rt.conversations.agent(conv, AgentAction("accept", "anna"))
        await eventually(lambda: _events(rt, conv, "handoff_cancelled"), "the hand-off withdrawn in the log")


async def test_an_ended_conversation_refuses_agent_actions(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [DESK_FLOW]) as rt:
        conv = await _handed_off(rt)
        await rt.conversations.close(conv, "abandoned")
        await asyncio.wait_for(rt.handle(conv).result(), 30)
        with pytest.raises(ConversationEnded):
            await rt.conversations.agent(conv, AgentAction("note", "anna", text="too late"))
        with pytest.raises(ConversationEnded):
            await rt.conversations.agent(_conversation(), AgentAction("accept", "anna"))
