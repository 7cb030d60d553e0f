"""The widget's "typing…" means a reply is being produced: not while the visitor waits in a queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.integration.runtime_support import eventually
from tests.integration.server_support import ChatClient, chat, running_node

QUEUE_FLOW = """
flow: desk
channels: [webchat]
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
    handoff: { queue: support }
    next: listen
"""


async def _typing_frames(visitor: ChatClient, settle: float = 1.0) -> list[bool]:
    """The typing states the socket carried, once it has been quiet for ``settle`` seconds."""
    states = [f["state"] for f in visitor.frames if f.get("type") == "typing"]
    visitor.frames = [f for f in visitor.frames if f.get("type") != "typing"]
    while True:
        try:
            frame = await asyncio.wait_for(visitor.next("typing"), settle)
        except (TimeoutError, AssertionError):
            return states
        states.append(frame["state"])


async def test_typing_shows_while_the_bot_answers_and_not_while_queued(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    flows = {"desk.yaml": QUEUE_FLOW}
    async with running_node(fx_dev_env, tmp_path, flows=flows) as node, chat(node) as visitor:
        await visitor.next("history")
        await visitor.say("hello")
        await visitor.reply_to("bot: hello")
        assert await _typing_frames(visitor, 0.3) == [True]  # the bot was writing; its reply hides it

        await visitor.say("I want a human")
        await visitor.reply_to("Connecting you with a colleague...")
        store = node.services.store
        conversation = store.list_conversations(channel="webchat")[0]
        await eventually(lambda: store.get_conversation(conversation.id).status == "handoff", "the hand-off")  # type: ignore[union-attr]
        await _typing_frames(visitor, 0.3)

        # Queued for an agent: the message is taken, and nobody pretends to be writing.
        sent = await visitor.say("hello? anyone?")
        await visitor.next("ack", where={"id": sent})
        assert True not in await _typing_frames(visitor)
