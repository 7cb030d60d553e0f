"""The database store: one object for everything Flowdesk keeps in its database.

:class:`Store` is composed of parts by subject (conversations, messages,
revisions, tokens); each method is one short transaction, so a Store is shared by
every thread of a process. Methods are synchronous: async callers wrap them in
``asyncio.to_thread``.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from engine.store.agent_feed import AgentFeedMixin
from engine.store.audit import AuditMixin
from engine.store.canned import CannedMixin
from engine.store.conversations import ConversationsMixin
from engine.store.db import DatabaseError, current_revision, describe, display_url, head_revision, upgrade
from engine.store.messages import MessagesMixin
from engine.store.people import PeopleMixin
from engine.store.reports import ReportsMixin
from engine.store.revisions import RevisionsMixin
from engine.store.tokens import TokensMixin
from engine.store.users import UsersMixin


class Store(
    ConversationsMixin,
    MessagesMixin,
    RevisionsMixin,
    TokensMixin,
    AuditMixin,
    UsersMixin,
    PeopleMixin,
    AgentFeedMixin,
    CannedMixin,
    ReportsMixin,
):
    """Contacts, conversations, the message log (with channel payloads), flow revisions, API tokens, people."""

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (a no-op when it is there)."""
        upgrade(self.engine)

    def revision(self) -> str | None:
        """The schema revision the database is at; None if it was never upgraded."""
        return current_revision(self.engine)

    def is_current(self) -> bool:
        """True if the schema is at the newest migration this code knows."""
        return self.revision() == head_revision()

    def ping(self) -> None:
        """Check that the database answers; raises :class:`DatabaseError` saying why not."""
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except SQLAlchemyError as exc:
            raise DatabaseError(
                f"the database at {display_url(self.engine.url)} does not answer: {describe(exc)}"
            ) from exc

    def close(self) -> None:
        """Finish queued writes, close the pooled connections (SQLite: checkpoints the WAL into the file)."""
        self._close_writes()
        self.engine.dispose()
