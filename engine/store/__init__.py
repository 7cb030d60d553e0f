"""The database store: sqlmodel tables and the queries on them (SQLite by default, PostgreSQL in production).

``Store(url)`` is the one entry point; ``StoreRevisions(store)`` serves it to the
runtime as a revision store. Schema changes are Alembic migrations under
``migrations/``, applied by :meth:`Store.upgrade` (``flowdesk db upgrade``).
"""

from __future__ import annotations

from engine.store.db import DatabaseError, create_db_engine, current_revision, database_url, head_revision, upgrade
from engine.store.revisions import StoreRevisions
from engine.store.store import Store
from engine.store.tables import ApiToken, Contact, Conversation, FlowRevision, Identity, LiveFlow, Message
from engine.store.tokens import TokenNameTaken

__all__ = [
    "ApiToken",
    "Contact",
    "Conversation",
    "DatabaseError",
    "FlowRevision",
    "Identity",
    "LiveFlow",
    "Message",
    "Store",
    "StoreRevisions",
    "TokenNameTaken",
    "create_db_engine",
    "current_revision",
    "database_url",
    "head_revision",
    "upgrade",
]
