"""A flow whose secret is not set on the worker: one log line naming it, then the error path."""

from __future__ import annotations

import logging
from pathlib import Path
from uuid import uuid4

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.integration.runtime_support import running_conversations

FLOW = """
flow: needs-token
steps:
  first:
    wait: message
  lookup:
    http:
      url: "http://127.0.0.1:9/orders/1"
      headers: { Authorization: "Bearer {{ secret('SHOP_TOKEN') }}" }
    on_error: sorry
  done:
    say: found it
    end: resolved
  sorry:
    say: "Sorry, the shop cannot be asked right now."
    end: resolved
"""


async def test_a_missing_secret_is_one_line_naming_it_and_the_step(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conv = f"c-{uuid4()}"
    caplog.set_level(logging.INFO)
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [FLOW]) as rt:
        await rt.send(conv, "where is my order?")
        assert await rt.channel.wait_texts(conv, 1) == ["Sorry, the shop cannot be asked right now."]
    about_it = [r for r in caplog.records if "SHOP_TOKEN" in r.getMessage()]
    assert len(about_it) == 1, [r.getMessage() for r in about_it]
    line = about_it[0].getMessage()
    assert line.startswith("flow needs-token step lookup: secret 'SHOP_TOKEN' is not set"), line
    assert "set the environment variable SHOP_TOKEN on the worker" in line
    assert not any(r.exc_info for r in caplog.records), "a traceback was logged"
