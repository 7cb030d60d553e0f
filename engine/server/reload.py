"""Live reload: the flows directory is the source of truth, watched and re-read.

Every change (create, modify, rename, delete — editors that save by writing a
temporary file and renaming it included) re-reads the whole directory; it is
small and compiling is fast (``bench/validate.py``: ~3 ms a file). A valid file
becomes a new revision, stored and made live at once: new conversations start
on it and running ones move to it at their next safe point. An invalid file
keeps its last good revision live and its diagnostics are kept for the API,
the log and a metric. A deleted file's flow stops taking new conversations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import watchfiles

from engine.errors import Diagnostic
from engine.flow.installation import Installation
from engine.flow.model import CompiledFlow
from engine.flow.validate import CompileResult, compile_paths
from engine.metrics import FLOW_ERRORS, RELOADS
from engine.runtime.revisions import FlowCatalog
from engine.store import Store

log = logging.getLogger(__name__)

#: Quiet time after the last file event before reloading: editors write in bursts.
DEBOUNCE_MS = 100


@dataclass
class FileStatus:
    """One flow file: the flow it defines and, if its last edit is broken, why."""

    file: str
    flow: str | None = None
    #: the live revision that came from this file (kept while the file is broken)
    revision: str | None = None
    errors: list[Diagnostic] = field(default_factory=list)
    checked_at: str = ""


@dataclass
class ReloadReport:
    changed: list[str] = field(default_factory=list)  # flow names now on a new revision
    retired: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # files whose edit was rejected


class FlowReloader:
    """Keeps the catalog's live revisions in step with the files of ``flows_dir``."""

    def __init__(
        self,
        catalog: FlowCatalog,
        store: Store,
        flows_dir: Path,
        *,
        installation: Callable[[], Installation | None] = lambda: None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.flows_dir = flows_dir
        #: what flows are checked against (the live settings): calendars, values, AI profiles
        self.installation = installation
        #: set on SIGHUP too: the settings file is reloaded by the same signal
        self.hup_settings = asyncio.Event()
        self.files: dict[str, FileStatus] = {}
        self._lock = threading.Lock()
        self.reloads = 0

    # -- reading the directory ---------------------------------------------------------

    def reload(self) -> ReloadReport:
        """Re-read the directory and publish what changed (thread-safe, synchronous)."""
        with self._lock:
            report = self._reload()
            self.reloads += 1
        RELOADS.labels("failed" if report.failed else "ok").inc()
        FLOW_ERRORS.set(sum(1 for s in self.files.values() if s.errors))
        return report

    def _reload(self) -> ReloadReport:
        report = ReloadReport()
        now = datetime.now(UTC).isoformat()
        result = (
            compile_paths([self.flows_dir], knowledge_dir=self.flows_dir, installation=self.installation())
            if self.flows_dir.is_dir()
            else None
        )
        seen: dict[str, FileStatus] = {}
        for compiled in result.flows if result else []:
            status = self.files.get(compiled.file) or FileStatus(compiled.file)
            status.checked_at = now
            seen[compiled.file] = status
            if compiled.flow is not None:
                self._accept(status, compiled, report)
            else:
                status.errors = [d for d in compiled.diagnostics if d.is_error]
                report.failed.append(compiled.file)
                for problem in status.errors:
                    log.error("flow file rejected, last good revision stays live: %s", problem.format())
        # Files gone (deleted, or renamed away): their flows stop taking new conversations,
        # unless another file defines the same flow now.
        provided = {s.flow for s in seen.values() if s.flow and not s.errors}
        for file, status in self.files.items():
            if file not in seen and status.flow and status.flow not in provided:
                # The store first: whoever sees the catalog without the flow finds the store agrees.
                self.store.remove_live(status.flow)
                self.catalog.retire(status.flow)
                report.retired.append(status.flow)
                log.info("flow %s retired: %s is gone", status.flow, file)
        self.files = seen
        return report

    def _accept(self, status: FileStatus, compiled: CompileResult, report: ReloadReport) -> None:
        flow = compiled.flow
        assert flow is not None
        status.errors = []
        if status.flow and status.flow != flow.name and status.flow not in self._other_flows(status):
            # The file now defines another flow id: the old one is retired.
            self.store.remove_live(status.flow)
            self.catalog.retire(status.flow)
            report.retired.append(status.flow)
        status.flow, status.revision = flow.name, flow.revision
        if self.catalog.live_map().get(flow.name) == flow.revision:
            return  # unchanged: every reload re-reads every file, and most did not change
        self.store.put_revision(
            flow.revision,
            flow.source,
            flow=flow.name,
            knowledge=flow.knowledge,
            message=self._change_message(flow, compiled.file),
        )
        self.catalog.publish(flow)
        self.store.set_live(flow.name, flow.revision, file=compiled.file)
        report.changed.append(flow.name)
        log.info("flow %s is live at revision %s (%s)", flow.name, flow.revision[:12], compiled.file)

    def _change_message(self, flow: CompiledFlow, file: str) -> str:
        """What changed, for the revision history: the flow file, or only its knowledge."""
        live = self.catalog.live(flow.name)
        if live is None or live.source != flow.source:
            return f"{_relative(file)} changed"
        changed = sorted(
            path for path in {*live.knowledge, *flow.knowledge} if live.knowledge.get(path) != flow.knowledge.get(path)
        )
        return f"knowledge {', '.join(changed)} changed" if changed else f"{_relative(file)} changed"

    def _other_flows(self, status: FileStatus) -> set[str]:
        return {s.flow for s in self.files.values() if s is not status and s.flow}

    # -- what the API shows ----------------------------------------------------------------

    def status_of(self, flow: str) -> FileStatus | None:
        return next((s for s in self.files.values() if s.flow == flow), None)

    def broken_files(self) -> Iterable[FileStatus]:
        return [s for s in self.files.values() if s.errors and not s.flow]

    def file_for(self, flow: str) -> Path:
        """The file a flow lives in, or where a new one would be written."""
        status = self.status_of(flow)
        return Path(status.file) if status is not None else self.flows_dir / f"{flow}.yaml"

    def write(self, flow: str, source: str) -> Path:
        """Replace a flow's file atomically (write a temporary file, then rename)."""
        target = self.file_for(flow)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(source)
            Path(tmp).chmod(0o644)
            Path(tmp).replace(target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    # -- watching ------------------------------------------------------------------------------

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload on every change under the directory and on SIGHUP, until ``stop``."""
        hup = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Not possible off the main thread or without SIGHUP: the watcher still reloads.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup, hup, self.hup_settings)
        changes = asyncio.create_task(self._watch_files(stop, hup))
        try:
            await reload_on(hup, stop, self.reload)
        finally:
            changes.cancel()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGHUP)

    @staticmethod
    def _on_sighup(*hups: asyncio.Event) -> None:
        log.info("SIGHUP: reloading the settings file and the flows directory")
        for hup in hups:
            hup.set()

    async def _watch_files(self, stop: asyncio.Event, hup: asyncio.Event) -> None:
        self.flows_dir.mkdir(parents=True, exist_ok=True)
        async for _changes in watchfiles.awatch(
            self.flows_dir, debounce=DEBOUNCE_MS, step=20, stop_event=stop, recursive=True
        ):
            hup.set()  # one path for both: a burst of events and a signal reload once


async def reload_on(hup: asyncio.Event, stop: asyncio.Event, reload: Callable[[], object]) -> None:
    """Run ``reload`` in a thread each time ``hup`` is set (a burst of file events or a signal), until ``stop``."""
    while not stop.is_set():
        waiter = asyncio.create_task(hup.wait())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()
        if hup.is_set() and not stop.is_set():
            hup.clear()
            await asyncio.to_thread(reload)


def _relative(file: str) -> str:
    try:
        return str(Path(file).relative_to(Path.cwd()))
    except ValueError:
        return file
