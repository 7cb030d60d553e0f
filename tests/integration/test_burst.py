"""A burst of messages on one conversation: every message is accepted and answered."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.integration.runtime_support import running_conversations

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
