"""Timers on the time-skipping test server: half an hour of conversation in milliseconds.

``fx_time_env.sleep(d)`` moves the server's clock forward by ``d`` at once, firing
the workflow timers that fall due. Before each jump a test waits until the
conversation is parked at the step whose timer it means to fire: a jump made
before the timer exists would only move the clock under it. The test server has
no update-with-start, so conversations are started first and sent plain updates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from engine.runtime.types import AgentAction
from tests.integration.runtime_support import ECHO_FLOW, Runtime, eventually, running_conversations

DESK_FLOW = """
flow: desk
steps:
  listen:
    wait: message
  human:
    say: Connecting you with a colleague...
    handoff: { queue: support, timeout: 10m }
    on_timeout: busy
    next: back
  busy:
    say: Everyone is busy right now.
    next: listen
  back:
    say: Thanks for your patience!
    next: listen
"""

#: Wall-clock budget of one test: the point of time skipping is that half an hour takes no time.
WALL_BUDGET = 20.0


@pytest.fixture(name="fx_runtime")
async def fixture_runtime(
    fx_time_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> AsyncIterator[Runtime]:
    async with running_conversations(fx_time_env.client, fx_task_queue, tmp_path, [ECHO_FLOW, DESK_FLOW]) as rt:
        started = time.monotonic()
        yield rt
        assert time.monotonic() - started < WALL_BUDGET


async def _skip(env: WorkflowEnvironment, duration: timedelta) -> None:
    """Move the test server's clock forward; fail fast if it cannot (its clock is held)."""
    try:
        await asyncio.wait_for(env.sleep(duration), timeout=15)
    except TimeoutError:
        raise AssertionError(
            f"the time-skipping server did not move {duration} forward within 15 s: its clock stops while a "
            "workflow task or activity is outstanding (a workflow that completed with an activity still "
            "running, or one left behind without a worker)"
        ) from None


async def _fired(rt: Runtime, conversation_id: str) -> list[timedelta]:
    """How long each timer of the conversation's current run ran before it fired (server time)."""
    history = await rt.handle(conversation_id).fetch_history()
    started: dict[str, datetime] = {}
    fired: list[timedelta] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            started[event.timer_started_event_attributes.timer_id] = event.event_time.ToDatetime()
        elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            timer_id = event.timer_fired_event_attributes.timer_id
            fired.append(event.event_time.ToDatetime() - started[timer_id])
    return fired


async def _started(rt: Runtime, flow: str) -> str:
    conversation_id = f"t-{uuid4()}"
    await rt.start(conversation_id, flow)
    return conversation_id


async def test_thirty_minutes_of_silence_close_the_conversation(
    fx_time_env: WorkflowEnvironment, fx_runtime: Runtime
) -> None:
    rt = fx_runtime
    conv = await _started(rt, "echo")
    await rt.update(conv, "hello")
    assert await rt.channel.wait_texts(conv, 1) == ["got hello"]
    await rt.wait_step(conv, "listen")

    wall = time.monotonic()
    await _skip(fx_time_env, timedelta(minutes=29))
    assert await _fired(rt, conv) == [], "29 minutes are not 30"
    await _skip(fx_time_env, timedelta(minutes=2))
    assert await rt.channel.wait_texts(conv, 2) == ["got hello", "bye"]
    assert (await rt.handle(conv).result())["status"] == "abandoned"
    assert time.monotonic() - wall < 10, "time skipping should make half an hour take no real time"
    [waited] = await _fired(rt, conv)
    assert timedelta(minutes=30) <= waited < timedelta(minutes=31)


async def test_a_message_before_the_timeout_starts_the_wait_again(
    fx_time_env: WorkflowEnvironment, fx_runtime: Runtime
) -> None:
    rt = fx_runtime
    conv = await _started(rt, "echo")
    await rt.update(conv, "hello")
    await rt.channel.wait_texts(conv, 1)
    await rt.wait_step(conv, "listen")

    await _skip(fx_time_env, timedelta(minutes=20))
    await rt.update(conv, "still here")
    assert await rt.channel.wait_texts(conv, 2) == ["got hello", "got still here"]
    await rt.wait_step(conv, "listen")

    # 40 minutes after the first message, 20 after the second: the first timer was cancelled
    await _skip(fx_time_env, timedelta(minutes=20))
    assert await _fired(rt, conv) == []
    assert (await rt.handle(conv).describe()).status == WorkflowExecutionStatus.RUNNING

    await _skip(fx_time_env, timedelta(minutes=11))
    assert (await rt.channel.wait_texts(conv, 3))[2] == "bye"
    assert (await rt.handle(conv).result())["status"] == "abandoned"
    assert rt.channel.texts(conv) == ["got hello", "got still here", "bye"]
    [waited] = await _fired(rt, conv)
    assert timedelta(minutes=30) <= waited < timedelta(minutes=31)


async def test_a_handoff_nobody_accepts_times_out_and_returns_held_messages(
    fx_time_env: WorkflowEnvironment, fx_runtime: Runtime
) -> None:
    rt = fx_runtime
    conv = await _started(rt, "desk")
    await rt.update(conv, "I need help")
    assert await rt.channel.wait_texts(conv, 1) == ["Connecting you with a colleague..."]
    await rt.wait_step(conv, "human", waiting_for="agent")
    await rt.update(conv, "anyone?")  # held for the agent
    await rt.wait_entries(conv, "in", 2)

    await _skip(fx_time_env, timedelta(minutes=9))
    assert await _fired(rt, conv) == []
    await _skip(fx_time_env, timedelta(minutes=2))
    # busy, then the held message comes back to the flow: `listen` takes it and hands off again
    assert await rt.channel.wait_texts(conv, 3) == [
        "Connecting you with a colleague...",
        "Everyone is busy right now.",
        "Connecting you with a colleague...",
    ]
    await rt.wait_step(conv, "human", waiting_for="agent")
    [waited] = await _fired(rt, conv)
    assert timedelta(minutes=10) <= waited < timedelta(minutes=11)


async def test_an_accepted_handoff_does_not_time_out(fx_time_env: WorkflowEnvironment, fx_runtime: Runtime) -> None:
    rt = fx_runtime
    conv = await _started(rt, "desk")
    await rt.update(conv, "I need help")
    await rt.channel.wait_texts(conv, 1)
    await rt.wait_step(conv, "human", waiting_for="agent")
    await rt.conversations.agent(conv, AgentAction("accept", "anna", name="Anna"))

    await _skip(fx_time_env, timedelta(minutes=11))
    state = await rt.step(conv)
    assert (state["status"], state["step"]) == ("handoff", "human")
    assert rt.channel.texts(conv) == ["Connecting you with a colleague...", "Anna joined the conversation."]

    await rt.conversations.agent(conv, AgentAction("resolve", "anna"))
    assert (await rt.channel.wait_texts(conv, 3))[2] == "Thanks for your patience!"
    await rt.wait_step(conv, "listen")


async def test_a_hand_off_transferred_to_a_queue_waits_there_with_its_timeout_again(
    fx_time_env: WorkflowEnvironment, fx_runtime: Runtime
) -> None:
    rt = fx_runtime
    conv = await _started(rt, "desk")
    await rt.update(conv, "I need help")
    await rt.wait_step(conv, "human", waiting_for="agent")
    await rt.conversations.agent(conv, AgentAction("accept", "anna", name="Anna"))
    await _skip(fx_time_env, timedelta(minutes=11))  # taken: no timeout
    await rt.conversations.agent(conv, AgentAction("transfer", "anna", queue="billing"))
    await rt.wait_step(conv, "human", waiting_for="agent")
    # nobody on billing takes it: the hand-off's 10 minutes run again, then `on_timeout`
    await _skip(fx_time_env, timedelta(minutes=11))
    assert (await rt.channel.wait_texts(conv, 3))[2] == "Everyone is busy right now."
    await rt.wait_step(conv, "listen")


async def test_a_wait_timer_survives_continue_as_new(fx_time_env: WorkflowEnvironment, fx_runtime: Runtime) -> None:
    rt = fx_runtime
    conv = f"t-{uuid4()}"
    await rt.start(conv, "echo", max_events_per_run=3)
    first_run = (await rt.handle(conv).describe()).run_id
    for text in ("one", "two", "three"):
        await rt.update(conv, text)
    assert await rt.channel.wait_texts(conv, 3) == ["got one", "got two", "got three"]

    # the third message ended the run; the timeout `listen` started in it moves to the next run
    async def next_run() -> bool:
        return (await rt.handle(conv).describe()).run_id != first_run

    await eventually(next_run, "the conversation to continue as new")
    view = await rt.conversations.state(conv)
    assert view.state["step"] == "listen" and len(view.timers) == 1

    await _skip(fx_time_env, timedelta(minutes=31))
    assert (await rt.channel.wait_texts(conv, 4))[3] == "bye"
    assert (await rt.handle(conv).result())["status"] == "abandoned"
