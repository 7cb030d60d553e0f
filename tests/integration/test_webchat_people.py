"""A web chat visitor handed to a person: who joined, the agent's name on replies, notes never on the socket.

A real node (SQLite store, its own embedded Temporal server) and a real widget socket;
agent actions through ``Conversations.agent``, as the REST actions send them. The
store's inbox row follows the log events (queue, assignee, labels, last message).
"""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from engine.runtime.types import AgentAction
from engine.store.tables import CsatRating
from tests.integration.runtime_support import eventually
from tests.integration.server_support import chat, running_node

DESK = """
flow: desk
channels: [webchat]
steps:
  listen: { wait: message }
  human:
    say: Connecting you...
    handoff: { queue: support }
    next: rate
  rate:
    csat: true
    next: listen
"""


async def test_a_visitor_meets_an_agent_by_name_and_never_sees_a_note(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with (
        running_node(fx_dev_env, tmp_path, flows={"desk.yaml": DESK}, embedded=True) as node,
        chat(node) as visitor,
    ):
        await visitor.next("welcome")
        await visitor.next("history")
        await visitor.say("I need a person")
        await visitor.reply_to("Connecting you...")
        store = node.services.store
        (row,) = await eventually(lambda: store.list_conversations(channel="webchat"), "the conversation")
        conv = row.id
        await eventually(lambda: (c := store.get_conversation(conv)) and c.status == "handoff", "the hand-off")
        agents = node.services.conversations
        await agents.agent(conv, AgentAction("note", "7", text="PRIVATE-NOTE for colleagues"))
        await agents.agent(conv, AgentAction("accept", "7", name="Anna"))
        joined = await visitor.reply_to("Anna joined the conversation.")
        assert joined["sender"] == "system"
        await agents.agent(conv, AgentAction("labels", "7", labels=["refund"]))
        await agents.agent(conv, AgentAction("reply", "7", text="Hi, Anna here.", name="Anna"))
        reply = await visitor.reply_to("Hi, Anna here.")
        assert (reply["sender"], reply["agent_name"]) == ("agent:7", "Anna")

        def inbox() -> object:
            c = store.get_conversation(conv)
            return c and (c.queue, c.assigned_agent, c.labels, c.last_message, c.waiting_since)

        await eventually(lambda: inbox() == ("support", "7", ["refund"], "Hi, Anna here.", None), "the inbox row")

        await agents.agent(conv, AgentAction("resolve", "7"))
        await visitor.reply_to("How would you rate this conversation, from 1 (poor) to 5 (excellent)?")
        await visitor.say("5")
        await visitor.reply_to("Thank you for your rating!")

        def rating() -> object:
            with store.engine.connect() as connection:
                found = connection.execute(select(CsatRating).where(CsatRating.conversation_id == conv)).first()
            return found and (found.rating, found.agent, found.queue)

        assert await eventually(rating, "the rating stored") == (5, "7", "support")
        notes = [m for m in store.transcript(conv) if m.status == "note"]
        assert [(m.direction, m.text) for m in notes] == [("event", "PRIVATE-NOTE for colleagues")]
        assert not any("PRIVATE-NOTE" in str(frame) for frame in visitor.frames)
        assert all(m.direction == "event" for m in store.transcript(conv) if "PRIVATE-NOTE" in m.text)
