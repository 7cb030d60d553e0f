"""What the deliver activity does with a channel's answers: a vendor's 429 is waited out, not hammered."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

from temporalio.testing import WorkflowEnvironment

from tests.integration.runtime_support import ECHO_FLOW, running_conversations


async def test_a_throttled_reply_is_sent_again_after_the_vendors_retry_after_and_once(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    # Replies through the deliver activity (a vendor channel's path, never inside the workflow task).
    async with running_conversations(
        fx_dev_env.client, fx_task_queue, tmp_path, [ECHO_FLOW], reply_in_task=False
    ) as rt:
        conv = f"throttled-{uuid4().hex}"
        rt.channel.throttled["busy"] = (1, 2.5)
        await rt.send(conv, "busy")
        assert await rt.channel.wait_texts(conv, 1, timeout=30) == ["got busy"]
        key = rt.channel.deliveries(conv)[0][0]
        first, second = rt.channel.attempted_at[key]
        # The activity's own back-off would retry after 1 s; the vendor asked for 2.5.
        assert second - first >= 2.5
        assert [e.status for e in await rt.wait_entries(conv, "out", 1)] == ["sent"]
