"""The audit log: who did what, when, to which conversation. Written by every agent and admin action.

Entries never carry a password, a token or a message's text: ``detail`` holds ids,
names and choices (the queue transferred to, the labels set, the role given).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, select

from engine.store.base import StoreBase
from engine.store.tables import AuditEntry


class AuditMixin(StoreBase):
    """Append to and read the audit log."""

    def audit(
        self,
        *,
        actor: str,
        actor_role: str,
        action: str,
        conversation_id: str | None = None,
        target: str = "",
        detail: dict[str, Any] | None = None,
        address: str = "",
    ) -> AuditEntry:
        """Record one action; returns the stored entry (with its id)."""
        entry = AuditEntry(
            actor=actor,
            actor_role=actor_role,
            action=action,
            conversation_id=conversation_id,
            target=target,
            detail=dict(detail or {}),
            address=address,
        )
        with self._write() as session:
            session.add(entry)
            session.flush()
        return entry

    def list_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        conversation_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEntry]:
        """Entries newest first, filtered; ``before_id`` pages back from an entry.

        ``action`` ending in ``.*`` matches a family (``conversation.*``). The actor,
        conversation and time filters are indexed; paging walks the primary key.
        """
        query = select(AuditEntry)
        if actor is not None:
            query = query.where(AuditEntry.actor == actor)
        if action is not None and action.endswith(".*"):
            query = query.where(col(AuditEntry.action).startswith(action[:-1], autoescape=True))
        elif action is not None:
            query = query.where(AuditEntry.action == action)
        if conversation_id is not None:
            query = query.where(AuditEntry.conversation_id == conversation_id)
        if since is not None:
            query = query.where(col(AuditEntry.at) >= since)
        if until is not None:
            query = query.where(col(AuditEntry.at) < until)
        if before_id is not None:
            query = query.where(col(AuditEntry.id) < before_id)
        with self._read() as session:
            return list(session.exec(query.order_by(col(AuditEntry.id).desc()).limit(limit)).all())
