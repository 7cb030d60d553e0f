"""Canned responses: saved replies an agent finds by typing ``/`` and a few letters.

Shared ones (``owner_id`` None) belong to the team and are edited by supervisors and
admins; personal ones belong to one user. A shortcut names one response per owner,
and one among the shared ones: the unique index cannot say the second (NULLs are
distinct in it), so writes check it themselves, under a lock on PostgreSQL where
two servers could insert the same shared shortcut at once.
"""

from __future__ import annotations

import zlib

from sqlalchemy import ColumnElement, case, func, or_, text
from sqlmodel import Session, col, select

from engine.errors import FlowdeskError
from engine.store.base import StoreBase
from engine.store.columns import utcnow
from engine.store.tables import CannedResponse


class CannedShortcutTaken(FlowdeskError):
    """Another canned response of the same owner (or another shared one) has this shortcut."""


def _owner_clause(owner_id: int | None) -> ColumnElement[bool]:
    return col(CannedResponse.owner_id).is_(None) if owner_id is None else col(CannedResponse.owner_id) == owner_id


def _lock_shortcut(session: Session, owner_id: int | None, shortcut: str) -> None:
    """Serialise writers of one (owner, shortcut) on PostgreSQL until commit (SQLite: BEGIN IMMEDIATE does)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    key = zlib.crc32(f"canned:{owner_id}:{shortcut.lower()}".encode())
    session.exec(text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=key))  # type: ignore[call-overload]


def _check_free(session: Session, owner_id: int | None, shortcut: str, keep: int | None) -> None:
    _lock_shortcut(session, owner_id, shortcut)
    query = select(CannedResponse.id).where(
        _owner_clause(owner_id), func.lower(CannedResponse.shortcut) == shortcut.lower()
    )
    if keep is not None:
        query = query.where(CannedResponse.id != keep)
    if session.exec(query).first() is not None:
        whose = "shared canned response" if owner_id is None else "canned response of yours"
        raise CannedShortcutTaken(f"another {whose} has the shortcut {shortcut!r}")


class CannedMixin(StoreBase):
    """Create, find, change and delete canned responses."""

    def create_canned(self, *, owner_id: int | None, shortcut: str, title: str, text: str) -> CannedResponse:
        """A new canned response; :class:`CannedShortcutTaken` if its owner already uses the shortcut."""
        with self._write() as session:
            _check_free(session, owner_id, shortcut, None)
            row = CannedResponse(owner_id=owner_id, shortcut=shortcut, title=title, text=text)
            session.add(row)
            session.flush()
            return row

    def get_canned(self, canned_id: int) -> CannedResponse | None:
        with self._read() as session:
            return session.get(CannedResponse, canned_id)

    def update_canned(self, canned_id: int, *, shortcut: str, title: str, text: str) -> CannedResponse | None:
        """Change a response's shortcut, title and text (its owner stays); None if it is gone."""
        with self._write() as session:
            row = session.get(CannedResponse, canned_id)
            if row is None:
                return None
            _check_free(session, row.owner_id, shortcut, canned_id)
            row.shortcut, row.title, row.text, row.updated_at = shortcut, title, text, utcnow()
            session.add(row)
            session.flush()
            return row

    def delete_canned(self, canned_id: int) -> bool:
        with self._write() as session:
            row = session.get(CannedResponse, canned_id)
            if row is None:
                return False
            session.delete(row)
            return True

    def list_canned(self, *, owner_id: int | None, query: str = "", limit: int = 50) -> list[CannedResponse]:
        """The shared responses and ``owner_id``'s own, matching ``query`` for the ``/`` picker.

        A match is a shortcut, title or text containing ``query`` (any case); shortcuts
        that start with it come first, then the rest, each by shortcut (one's own first).
        """
        mine: ColumnElement[bool] = col(CannedResponse.owner_id).is_(None)
        if owner_id is not None:
            mine = or_(mine, col(CannedResponse.owner_id) == owner_id)
        statement = select(CannedResponse).where(mine)
        needle = query.strip().lower().removeprefix("/")
        order = []
        if needle:
            shortcut = func.lower(CannedResponse.shortcut)
            statement = statement.where(
                or_(
                    shortcut.contains(needle, autoescape=True),
                    func.lower(CannedResponse.title).contains(needle, autoescape=True),
                    func.lower(CannedResponse.text).contains(needle, autoescape=True),
                )
            )
            order.append(case((shortcut.startswith(needle, autoescape=True), 0), else_=1))
        # One's own before the shared one of the same shortcut (spelled out: databases sort NULLs differently).
        own_first = case((col(CannedResponse.owner_id).is_(None), 1), else_=0)
        statement = statement.order_by(*order, func.lower(CannedResponse.shortcut), own_first)
        with self._read() as session:
            return list(session.exec(statement.limit(limit)).all())
