"""A burst of messages on one conversation: every message is accepted and answered."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from engine.runtime.client import RETRIED_RPC
from tests.integration.runtime_support import Runtime, running_conversations

ECHO = """
flow: burst
ai:
  echo: { providers: [{ use: echo }] }
steps:
  listen: { wait: message }
  answer: { ai: echo, on_error: listen, next: listen }
"""


async def test_forty_messages_at_once_are_all_accepted_and_answered(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    # More updates at once than the server lets be in flight per workflow (10 by
    # default): the client sends the excess again instead of losing them.
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [ECHO]) as rt:
        texts = [f"message {i}" for i in range(40)]
        accepted = await asyncio.gather(*(rt.send("burst-1", text) for text in texts))
        assert len({a.message_id for a in accepted}) == 40
        replies = await rt.channel.wait_texts("burst-1", 40, timeout=60)
        assert sorted(replies) == sorted(texts)  # each answered exactly once


async def test_a_burst_past_the_servers_limit_loses_no_reply(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    # Plain updates from several senders at once (as several server nodes would send
    # them), past the server's limit of updates in flight: the server refuses some and
    # drops workflow tasks meanwhile, and tasks that delivered a reply run again.
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [ECHO]) as rt:
        await rt.start("burst-2", "burst")
        texts = [f"message {i}" for i in range(40)]
        await asyncio.gather(*(_update_until_taken(rt, "burst-2", text) for text in texts))
        await rt.channel.wait_texts("burst-2", 40, timeout=60)
        await rt.wait_step("burst-2", "listen")
        assert sorted(rt.channel.texts("burst-2")) == sorted(texts)  # none lost, none twice


async def _update_until_taken(rt: Runtime, conversation_id: str, text: str) -> None:
    for _ in range(20):
        try:
            await rt.update(conversation_id, text)
            return
        except RPCError as exc:
            # Refused past the limit, or aborted with a workflow task the server dropped.
            if exc.status not in RETRIED_RPC:
                raise
            await asyncio.sleep(0.1)
    raise AssertionError(f"{text!r} was never taken")
