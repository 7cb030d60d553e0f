"""Flow revisions: an immutable, content-addressed store and the live catalog.

A revision is stored once under its hash and never changes, so a worker that
loads "shop-support@3fa2..." gets the same compiled flow on every machine and
on every replay: that is what lets workflow code read it. The catalog says
which revision of each flow is *live* (what new conversations start on and what
running ones move to at their next safe point).

This first store keeps revisions as files under ``<data_dir>/revisions``; the
database-backed store arrives with the server and implements the same protocol.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from engine.errors import FlowError, FlowRuntimeError
from engine.flow.model import CompiledFlow
from engine.flow.public_settings import DEFAULT_SETTINGS, PublicSettings
from engine.flow.validate import compile_paths, compile_source


class RevisionStore(Protocol):
    """Immutable flow sources, and the knowledge texts attached to them, by revision hash."""

    def get(self, revision: str) -> str | None: ...

    def knowledge(self, revision: str) -> dict[str, str]: ...

    def put(self, revision: str, source: str, knowledge: Mapping[str, str] | None = None) -> None: ...

    def settings(self, revision: str) -> dict[str, Any] | None:
        """The public settings stored under ``revision``, or None."""
        ...

    def put_settings(self, settings: PublicSettings) -> None: ...


class FileRevisionStore:
    """Revisions as ``<root>/<hash>.yaml`` (and ``<hash>.knowledge.json``); writes are atomic."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def get(self, revision: str) -> str | None:
        if not revision.isalnum():
            return None  # a hash, never a path
        try:
            return (self.root / f"{revision}.yaml").read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def knowledge(self, revision: str) -> dict[str, str]:
        if not revision.isalnum():
            return {}
        try:
            texts = json.loads((self.root / f"{revision}.knowledge.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return {str(path): str(text) for path, text in texts.items()}

    def put(self, revision: str, source: str, knowledge: Mapping[str, str] | None = None) -> None:
        target = self.root / f"{revision}.yaml"
        if target.exists():
            return
        # The knowledge first: a reader that finds the source finds its knowledge too.
        if knowledge:
            self._write(self.root / f"{revision}.knowledge.json", json.dumps(dict(knowledge), ensure_ascii=False))
        self._write(target, source)

    def settings(self, revision: str) -> dict[str, Any] | None:
        if not revision.isalnum():
            return None
        try:
            data = json.loads((self.root / f"{revision}.settings.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return dict(data)

    def put_settings(self, settings: PublicSettings) -> None:
        target = self.root / f"{settings.revision}.settings.json"
        if not target.exists():
            self._write(target, json.dumps(dict(settings.data), ensure_ascii=False, sort_keys=True))

    def _write(self, target: Path, text: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(tmp).chmod(0o644)  # mkstemp makes it private; workers may run as another user
        Path(tmp).replace(target)


class CompiledFlows:
    """Compiled revisions by (flow, revision), loaded from a store on first use.

    Shared by every workflow on a worker. Loading is deterministic: the content
    behind a hash never changes, and compiling is pure.
    """

    def __init__(self, store: RevisionStore) -> None:
        self.store = store
        self._flows: dict[tuple[str, str], CompiledFlow] = {}
        self._settings: dict[str, PublicSettings] = {"": DEFAULT_SETTINGS}
        self._lock = threading.Lock()

    def add(self, flow: CompiledFlow) -> None:
        with self._lock:
            self._flows[(flow.name, flow.revision)] = flow

    def find(self, name: str, revision: str) -> CompiledFlow | None:
        """Like :meth:`get`, or None when the revision cannot be had."""
        if not name or not revision:
            return None
        try:
            return self.get(name, revision)
        except (FlowRuntimeError, FlowError):
            return None

    def get(self, name: str, revision: str) -> CompiledFlow:
        flow = self._flows.get((name, revision))
        if flow is not None:
            return flow
        source = self.store.get(revision)
        if source is None:
            raise FlowRuntimeError("revision_missing", f"revision {revision[:12]} of flow {name!r} is not stored")
        result = compile_source(source, f"{name}@{revision[:12]}", knowledge=self.store.knowledge(revision))
        if result.flow is None:
            raise FlowError(result.diagnostics)
        if (result.flow.name, result.flow.revision) != (name, revision):
            raise FlowRuntimeError("revision_mismatch", f"stored revision {revision[:12]} is not flow {name!r}")
        self.add(result.flow)
        return result.flow

    def add_settings(self, settings: PublicSettings) -> None:
        with self._lock:
            self._settings[settings.revision] = settings

    def settings(self, revision: str) -> PublicSettings:
        """Settings revision ``revision`` ("" = the defaults), loaded from the store on first use."""
        found = self._settings.get(revision)
        if found is not None:
            return found
        data = self.store.settings(revision)
        if data is None:
            raise FlowRuntimeError("settings_missing", f"settings revision {revision[:12]} is not stored")
        loaded = PublicSettings.from_data(data)
        if loaded.revision != revision:
            raise FlowRuntimeError("settings_mismatch", f"stored settings {revision[:12]} do not hash to their id")
        self.add_settings(loaded)
        return loaded


class FlowCatalog:
    """The live revision of each flow, plus every revision ever published."""

    def __init__(self, store: RevisionStore, compiled: CompiledFlows | None = None) -> None:
        self.store = store
        self.compiled = compiled or CompiledFlows(store)
        self._live: dict[str, str] = {}
        self._lock = threading.Lock()
        #: the settings revision new conversations start on and running ones move to
        self.live_settings: PublicSettings = DEFAULT_SETTINGS

    def publish_settings(self, settings: PublicSettings) -> bool:
        """Store a settings revision and make it live; False if it already was."""
        if self.live_settings.revision == settings.revision:
            return False
        if settings.revision:
            self.store.put_settings(settings)
        self.compiled.add_settings(settings)
        self.live_settings = settings
        return True

    def follow_settings(self, revision: str) -> None:
        """Make a settings revision another node published live (a separate worker follows the store)."""
        if revision != self.live_settings.revision:
            self.live_settings = self.compiled.settings(revision)

    def publish(self, flow: CompiledFlow) -> bool:
        """Store a compiled flow's source and make it the live revision; False if it already was."""
        if self._live.get(flow.name) == flow.revision:
            return False
        self.store.put(flow.revision, flow.source, flow.knowledge)
        self.compiled.add(flow)
        with self._lock:
            self._live[flow.name] = flow.revision
        return True

    def retire(self, name: str) -> None:
        """No new conversation starts on ``name``; running ones finish on their revision."""
        with self._lock:
            self._live.pop(name, None)

    def replace_live(self, live: dict[str, str]) -> None:
        """Take the live revisions another node published (a separate worker follows the store)."""
        with self._lock:
            self._live = dict(live)

    def live_map(self) -> dict[str, str]:
        """Every live flow and its revision."""
        return dict(self._live)

    def publish_dir(self, paths: Iterable[str | Path], *, knowledge_dir: Path | None = None) -> list[str]:
        """Compile and publish every valid flow under ``paths``; returns problems as text."""
        result = compile_paths(paths, knowledge_dir=knowledge_dir)
        problems = [d.format() for d in result.diagnostics if d.is_error]
        for compiled in result.flows:
            if compiled.flow is not None:
                self.publish(compiled.flow)
        return problems

    def get(self, name: str, revision: str | None = None) -> CompiledFlow | None:
        """A FlowResolver for the interpreter: ``revision`` of ``name``, or its live one."""
        return self.live(name) if revision is None else self.compiled.get(name, revision)

    def live(self, name: str) -> CompiledFlow | None:
        revision = self._live.get(name)
        return self.compiled.get(name, revision) if revision is not None else None

    def live_revisions(self, names: Iterable[str]) -> dict[str, str]:
        return {name: self._live[name] for name in names if name in self._live}

    def flows(self) -> list[CompiledFlow]:
        return [flow for name in sorted(self._live) if (flow := self.live(name)) is not None]
