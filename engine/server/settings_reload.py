"""Live settings: ``flowdesk.yaml`` watched and re-read, its public part a settings revision.

A valid edit becomes a new settings revision (engine.flow.public_settings),
stored and made live within a second: new conversations start on it and running
ones move to it at their next safe point, exactly as with a flow edit. An invalid
edit keeps the last good settings live; its problems (``file:line:col`` where the
file had them) are logged, counted, and shown by ``GET /api/settings``.

Only the public part is live-reloaded this way. What the server itself was
started with (ports, database, Temporal, AI profiles, word lists, channel
secrets) needs a restart; a changed one is named in the log.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import watchfiles

from engine.errors import ConfigError, Diagnostic
from engine.flow.installation import Installation
from engine.flow.public_settings import PublicSettings
from engine.metrics import SETTINGS_INVALID, SETTINGS_RELOADS
from engine.runtime.revisions import FlowCatalog
from engine.server.reload import reload_on
from engine.settings import Settings
from engine.store import Store

log = logging.getLogger(__name__)

#: Settings read at start only: an edit of these is logged as needing a restart.
RESTART_KEYS = ("server", "database", "temporal", "data_dir", "flows_dir", "ai_profiles", "word_lists", "channels")


@dataclass
class SettingsStatus:
    """The settings file as last read: the live revision and, if the last edit was refused, why."""

    file: str | None
    revision: str = ""
    errors: list[Diagnostic] = field(default_factory=list)
    #: a refused edit's message when it had no position (a file that cannot be read, say)
    error: str = ""
    checked_at: str = ""


class SettingsReloader:
    """Keeps the catalog's live settings revision in step with the settings file."""

    def __init__(
        self,
        catalog: FlowCatalog,
        store: Store,
        settings: Settings,
        *,
        derive: Callable[[Settings], Settings] = lambda settings: settings,
    ) -> None:
        self.catalog = catalog
        self.store = store
        #: what the node adds to every reading of the file (the demo shop's URL, say)
        self.derive = derive
        self.settings = derive(settings)
        self.status = SettingsStatus(str(settings.file) if settings.file is not None else None)
        self._lock = threading.Lock()

    def installation(self) -> Installation:
        """What flows are checked against: the live settings' calendars, values and AI profiles."""
        return self.settings.installation()

    def publish(self, public: PublicSettings | None = None) -> None:
        """Store the current settings' revision (``public``, if already made) and make it live."""
        public = public or self.settings.public()
        self.store.put_settings(public)
        self.store.set_live_settings(public.revision, file=self.status.file)
        self.catalog.publish_settings(public)
        self.status.revision = public.revision
        self.status.checked_at = datetime.now(UTC).isoformat()
        log.info("settings revision %s is live", public.revision[:12])

    def reload(self) -> bool:
        """Re-read the file; True when a new revision went live (thread-safe, synchronous)."""
        if self.status.file is None:
            return False
        with self._lock:
            self.status.checked_at = datetime.now(UTC).isoformat()
            try:
                fresh = self.derive(Settings.load(self.status.file))
                public = fresh.public()  # a broken calendar is this edit's error, not a conversation's
            except ConfigError as exc:
                self.status.errors, self.status.error = exc.diagnostics, "" if exc.diagnostics else str(exc)
                SETTINGS_RELOADS.labels("failed").inc()
                SETTINGS_INVALID.set(1)
                log.error("settings file rejected, last good settings stay live: %s", exc)
                return False
            self.status.errors, self.status.error = [], ""
            SETTINGS_RELOADS.labels("ok").inc()
            SETTINGS_INVALID.set(0)
            restart = [key for key in RESTART_KEYS if fresh.get(key) != self.settings.get(key)]
            if restart:
                log.warning("settings changed that take effect after a restart: %s", ", ".join(restart))
            self.settings = fresh
            if self.catalog.live_settings.revision == public.revision:
                return False
            self.publish(public)
            return True

    async def watch(self, stop: asyncio.Event, hup: asyncio.Event) -> None:
        """Reload when the file changes (editors that write and rename included), until ``stop``.

        ``hup`` is set by the node's SIGHUP handler and read here too.
        """
        if self.status.file is None:
            return
        file = Path(self.status.file).resolve()
        file.parent.mkdir(parents=True, exist_ok=True)
        changes = asyncio.create_task(self._watch_file(file, stop, hup))
        try:
            await reload_on(hup, stop, self.reload)
        finally:
            changes.cancel()

    @staticmethod
    async def _watch_file(file: Path, stop: asyncio.Event, hup: asyncio.Event) -> None:
        # The directory, not the file: an editor's rename replaces the file being watched.
        async for changes in watchfiles.awatch(
            file.parent,
            debounce=100,
            step=20,
            stop_event=stop,
            recursive=False,
            watch_filter=lambda _change, path: Path(path).name == file.name,
        ):
            if changes:
                hup.set()
