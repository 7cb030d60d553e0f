"""Flow revisions (immutable sources by content hash) and the live revision of each flow."""

from __future__ import annotations

import re
from collections.abc import Mapping

import yaml
from sqlmodel import Session, col, select

from engine.flow.public_settings import PublicSettings
from engine.store.base import StoreBase
from engine.store.columns import utcnow
from engine.store.tables import FlowRevision, LiveFlow, LiveSettings, SettingsRevision

#: The ``flow:`` line of a flow file; flow ids are ``[a-z0-9_-]+`` (the schema says so).
_FLOW_LINE = re.compile(r"""^flow:[ \t]*(["']?)([a-z0-9_-]+)\1[ \t]*(?:#.*)?$""", re.MULTILINE)


def flow_name(source: str) -> str:
    """The flow id a source declares; ``""`` if it cannot be told.

    The revision store protocol hands over only (hash, source); the id is read from
    the source's top-level ``flow:`` key, by a regular expression for the usual
    one-line form and by YAML otherwise. Sources reach the store after compiling,
    so parsing them is safe.
    """
    match = _FLOW_LINE.search(source)
    if match is not None:
        return match.group(2)
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError:
        return ""
    name = data.get("flow") if isinstance(data, dict) else None
    return name if isinstance(name, str) else ""


class RevisionsMixin(StoreBase):
    """Revisions are written once and never change; the live table says which one runs."""

    def put_revision(
        self,
        revision: str,
        source: str,
        *,
        flow: str,
        knowledge: Mapping[str, str] | None = None,
        author: str = "files",
        message: str = "",
    ) -> bool:
        """Store a revision once; False if it was already stored (the stored one is kept)."""

        def work(session: Session) -> bool:
            if session.get(FlowRevision, revision) is not None:
                return False
            row = FlowRevision(
                revision=revision,
                flow=flow,
                source=source,
                knowledge=dict(knowledge or {}),
                author=author,
                message=message,
            )
            session.add(row)
            session.flush()
            return True

        return self._write_retrying(work)

    def get_revision(self, revision: str) -> FlowRevision | None:
        with self._read() as session:
            return session.get(FlowRevision, revision)

    def revision_source(self, revision: str) -> str | None:
        with self._read() as session:
            return session.exec(select(FlowRevision.source).where(FlowRevision.revision == revision)).first()

    def revision_knowledge(self, revision: str) -> dict[str, str]:
        """The knowledge texts stored with a revision (none for one stored before they were)."""
        with self._read() as session:
            found = session.exec(select(FlowRevision.knowledge).where(FlowRevision.revision == revision)).first()
        return dict(found or {})

    def history(self, flow: str, limit: int = 100) -> list[FlowRevision]:
        """The revisions of ``flow``, newest first."""
        query = (
            select(FlowRevision)
            .where(FlowRevision.flow == flow)
            .order_by(col(FlowRevision.created_at).desc(), col(FlowRevision.revision))
            .limit(limit)
        )
        with self._read() as session:
            return list(session.exec(query).all())

    def set_live(self, flow: str, revision: str, *, file: str | None = None) -> None:
        """Make ``revision`` (already stored) the one new conversations of ``flow`` start on."""

        def work(session: Session) -> None:
            if session.get(FlowRevision, revision) is None:
                raise LookupError(f"revision {revision[:12]} of flow {flow!r} is not stored: put_revision first")
            live = session.get(LiveFlow, flow)
            if live is None:
                session.add(LiveFlow(flow=flow, revision=revision, file=file))
            else:
                live.revision, live.file, live.updated_at = revision, file, utcnow()
                session.add(live)
            session.flush()

        self._write_retrying(work)

    def live_flows(self) -> dict[str, LiveFlow]:
        with self._read() as session:
            return {live.flow: live for live in session.exec(select(LiveFlow).order_by(col(LiveFlow.flow))).all()}

    def remove_live(self, flow: str) -> bool:
        """Take a flow out of service (its file was deleted); False if it was not live."""
        with self._write() as session:
            live = session.get(LiveFlow, flow)
            if live is None:
                return False
            session.delete(live)
            return True

    # -- settings revisions: like flow revisions, written once, one of them live ------------

    def put_settings(self, settings: PublicSettings) -> bool:
        """Store a settings revision once; False if it was already stored."""

        def work(session: Session) -> bool:
            if session.get(SettingsRevision, settings.revision) is not None:
                return False
            session.add(SettingsRevision(revision=settings.revision, data=dict(settings.data)))
            session.flush()
            return True

        return self._write_retrying(work)

    def settings_data(self, revision: str) -> dict[str, object] | None:
        with self._read() as session:
            found = session.exec(select(SettingsRevision.data).where(SettingsRevision.revision == revision)).first()
        return dict(found) if found is not None else None

    def set_live_settings(self, revision: str, *, file: str | None = None) -> None:
        """Make a stored settings revision the one new conversations start on."""

        def work(session: Session) -> None:
            live = session.get(LiveSettings, "default")
            if live is None:
                session.add(LiveSettings(name="default", revision=revision, file=file))
            else:
                live.revision, live.file, live.updated_at = revision, file, utcnow()
                session.add(live)
            session.flush()

        self._write_retrying(work)

    def live_settings(self) -> str | None:
        """The live settings revision's id, or None before any was published."""
        with self._read() as session:
            live = session.get(LiveSettings, "default")
            return live.revision if live is not None else None


class StoreRevisions:
    """The runtime's RevisionStore protocol, backed by the database instead of files."""

    def __init__(self, store: RevisionsMixin) -> None:
        self.store = store

    def get(self, revision: str) -> str | None:
        return self.store.revision_source(revision)

    def knowledge(self, revision: str) -> dict[str, str]:
        return self.store.revision_knowledge(revision)

    def put(self, revision: str, source: str, knowledge: Mapping[str, str] | None = None) -> None:
        self.store.put_revision(revision, source, flow=flow_name(source), knowledge=knowledge, author="files")

    def settings(self, revision: str) -> dict[str, object] | None:
        return self.store.settings_data(revision)

    def put_settings(self, settings: PublicSettings) -> None:
        self.store.put_settings(settings)
