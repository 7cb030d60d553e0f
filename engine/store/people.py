"""People's side of the store: admin-described queues, presence, agents' loads, the inbox and read marks.

The users table belongs to engine/store/users.py; this part only reads it (and
writes presence), with plain queries. Everything the dispatcher runs each round
(loads, waiting conversations) is one indexed query per queue or one grouped
query in all, so a round stays cheap with thousands of conversations.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, cast, exists, false, literal, or_, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, func, select

from engine.store.base import StoreBase, changes_people
from engine.store.columns import utcnow
from engine.store.conversations import ENDED, HANDOFF
from engine.store.tables import AgentQueue, Conversation, Message, ReadMark, UserAccount

PRESENCES = ("online", "away", "offline")


@dataclass(frozen=True, slots=True)
class QueueStats:
    """How a queue stands now: conversations waiting for an agent and since when the oldest waits."""

    waiting: int = 0
    oldest: datetime | None = None


@dataclass(frozen=True, slots=True)
class InboxFilter:
    """What ``GET /api/conversations`` asks for; None means "any"."""

    status: str | None = None
    channel: str | None = None
    flow: str | None = None
    #: flow -> live revision: only running conversations on another revision
    outdated: dict[str, str] | None = None
    queue: str | None = None
    assignee: str | None = None
    unassigned: bool = False
    label: str | None = None
    #: False: snoozed conversations are left out; True: only snoozed ones
    snoozed: bool = False
    #: None: every conversation; else only those in these queues or held by ``viewer_agent``
    visible_queues: Collection[str] | None = None
    viewer_agent: str | None = None
    #: with ``visible_queues``: the described queues; a conversation in any other (open) queue is visible too
    described_queues: Collection[str] | None = None


def snoozed_clause(now: datetime) -> ColumnElement[bool]:
    """A conversation hidden from the inbox by a snooze: until a time still ahead, or until the customer writes."""
    return or_(
        col(Conversation.snoozed_until_reply).is_(true()),
        and_(col(Conversation.snoozed_until).is_not(None), col(Conversation.snoozed_until) > now),
    )


def visible_clause(
    queues: Collection[str], agent: str | None, described: Collection[str] | None = None
) -> ColumnElement[bool]:
    """What an agent sees: conversations of their queues (and of queues nobody described) and those they hold."""
    parts: list[ColumnElement[bool]] = []
    if queues:
        parts.append(col(Conversation.queue).in_(sorted(queues)))
    if described is not None:
        open_queue = col(Conversation.queue).is_not(None)
        parts.append(and_(open_queue, col(Conversation.queue).not_in(sorted(described))) if described else open_queue)
    if agent:
        parts.append(col(Conversation.assigned_agent) == agent)
    return or_(*parts) if parts else false()


class PeopleMixin(StoreBase):
    """Queues described by admins, presence, loads, waiting conversations, read marks and the inbox list."""

    # -- admin queues ------------------------------------------------------------------

    def list_admin_queues(self) -> list[AgentQueue]:
        with self._read() as session:
            return list(session.exec(select(AgentQueue).order_by(col(AgentQueue.name))).all())

    def get_admin_queue(self, name: str) -> AgentQueue | None:
        with self._read() as session:
            return session.get(AgentQueue, name)

    @changes_people
    def save_admin_queue(self, queue: AgentQueue, *, create: bool) -> AgentQueue | None:
        """Insert (``create``) or replace a queue; None if it exists (``create``) or does not (replace)."""

        def work(session: Any) -> AgentQueue | None:
            stored = session.get(AgentQueue, queue.name, with_for_update=True)
            if (stored is None) == (not create):
                return None
            row = stored or AgentQueue(name=queue.name)
            row.display_name, row.description = queue.display_name, queue.description
            row.members, row.capacity = list(queue.members), queue.capacity
            row.hours, row.when_nobody = queue.hours, queue.when_nobody
            row.updated_at = utcnow()
            session.add(row)
            session.flush()
            return row

        return self._write_retrying(work)

    @changes_people
    def delete_admin_queue(self, name: str) -> bool:
        with self._write() as session:
            row = session.get(AgentQueue, name)
            if row is None:
                return False
            session.delete(row)
            return True

    # -- people ------------------------------------------------------------------------

    def list_people(self, roles: Collection[str] | None = None) -> list[UserAccount]:
        """Users who are not disabled (with one of ``roles``), by display name."""
        query = select(UserAccount).where(col(UserAccount.disabled_at).is_(None))
        if roles is not None:
            query = query.where(col(UserAccount.role).in_(sorted(roles)))
        with self._read() as session:
            return list(session.exec(query.order_by(col(UserAccount.display_name), col(UserAccount.id))).all())

    def users_by_email(self, emails: Collection[str]) -> dict[str, int]:
        """User ids by (lower-case) e-mail, for settings queues that name their members by address."""
        if not emails:
            return {}
        wanted = sorted({e.strip().lower() for e in emails})
        with self._read() as session:
            rows = session.exec(select(UserAccount.email, UserAccount.id).where(col(UserAccount.email).in_(wanted)))
            return {email: user_id for email, user_id in rows.all() if user_id is not None}

    def get_presence(self, user_id: int) -> tuple[str, datetime | None] | None:
        """(presence, since when) of a user; None if there is no such user."""
        with self._read() as session:
            row = session.exec(
                select(UserAccount.presence, UserAccount.presence_at).where(UserAccount.id == user_id)
            ).first()
            return None if row is None else (row[0], row[1])

    def set_presence(self, user_id: int, presence: str) -> str | None:
        """Set a user's presence; returns the one it had (None if there is no such user)."""
        if presence not in PRESENCES:
            raise ValueError(f"presence {presence!r} is not one of {', '.join(PRESENCES)}")
        with self._write() as session:
            user = session.get(UserAccount, user_id)
            if user is None:
                return None
            before = user.presence
            if before != presence:
                user.presence, user.presence_at = presence, utcnow()
                session.add(user)
            return before

    def agent_loads(self, agents: Collection[str] | None = None) -> dict[str, int]:
        """Conversations in hand-off each agent holds (not ended); agents holding none are left out."""
        query = (
            select(Conversation.assigned_agent, func.count())
            .where(Conversation.status == HANDOFF, col(Conversation.assigned_agent).is_not(None))
            .group_by(col(Conversation.assigned_agent))
        )
        if agents is not None:
            if not agents:
                return {}
            query = query.where(col(Conversation.assigned_agent).in_(sorted(agents)))
        with self._read() as session:
            return {agent: count for agent, count in session.exec(query).all() if agent is not None}

    # -- queues' conversations ---------------------------------------------------------

    def waiting_conversations(self, queue: str, *, limit: int = 200, now: datetime | None = None) -> list[Conversation]:
        """A queue's conversations waiting for an agent (handed off, nobody holds it, not snoozed), oldest first."""
        query = (
            select(Conversation)
            .where(
                Conversation.status == HANDOFF,
                Conversation.queue == queue,
                col(Conversation.assigned_agent).is_(None),
                ~snoozed_clause(now or utcnow()),
            )
            .order_by(col(Conversation.waiting_since).asc(), col(Conversation.created_at), col(Conversation.id))
            .limit(limit)
        )
        with self._read() as session:
            return list(session.exec(query).all())

    def queue_stats(self, now: datetime | None = None) -> dict[str, QueueStats]:
        """Waiting conversations and the oldest wait of every queue that has any."""
        query = (
            select(Conversation.queue, func.count(), func.min(Conversation.waiting_since))
            .where(
                Conversation.status == HANDOFF,
                col(Conversation.queue).is_not(None),
                col(Conversation.assigned_agent).is_(None),
                ~snoozed_clause(now or utcnow()),
            )
            .group_by(col(Conversation.queue))
        )
        with self._read() as session:
            return {
                queue: QueueStats(count, oldest)
                for queue, count, oldest in session.exec(query).all()
                if queue is not None
            }

    # -- read marks --------------------------------------------------------------------

    def mark_read(self, user_id: int, conversation_id: str, seq: int) -> int:
        """Mark a conversation read up to ``seq`` (never backwards); returns the mark now kept."""

        def work(session: Any) -> int:
            mark = session.get(ReadMark, (user_id, conversation_id), with_for_update=True)
            if mark is None:
                session.add(ReadMark(user_id=user_id, conversation_id=conversation_id, seq=seq))
                session.flush()
                return seq
            if seq > mark.seq:
                mark.seq = seq
                session.add(mark)
            return int(mark.seq)

        return self._write_retrying(work)

    def read_mark(self, user_id: int, conversation_id: str) -> int:
        with self._read() as session:
            mark = session.get(ReadMark, (user_id, conversation_id))
            return 0 if mark is None else int(mark.seq)

    def unread_counts(self, user_id: int, conversation_ids: Sequence[str]) -> dict[str, int]:
        """Customer messages after the user's read mark, for a page of conversations (absent: none unread)."""
        if not conversation_ids:
            return {}
        mark = (
            select(ReadMark.seq)
            .where(ReadMark.user_id == user_id, col(ReadMark.conversation_id) == col(Message.conversation_id))
            .correlate(Message)
            .scalar_subquery()
        )
        query = (
            select(Message.conversation_id, func.count())
            .where(
                col(Message.conversation_id).in_(list(conversation_ids)),
                Message.direction == "in",
                col(Message.seq) > func.coalesce(mark, literal(0)),
            )
            .group_by(col(Message.conversation_id))
        )
        with self._read() as session:
            return {cid: count for cid, count in session.exec(query).all()}

    # -- the inbox ---------------------------------------------------------------------

    def _label_clause(self, label: str) -> ColumnElement[bool]:
        """A conversation with ``label`` among its labels (a JSON array), in the database's own JSON."""
        if self.engine.dialect.name == "postgresql":
            return cast(col(Conversation.labels), JSONB).contains([label])
        each = func.json_each(col(Conversation.labels)).table_valued("value")
        return exists(select(literal(1)).select_from(each).where(each.c.value == label))

    def inbox(
        self, where: InboxFilter, *, limit: int = 50, offset: int = 0, now: datetime | None = None
    ) -> list[Conversation]:
        """Conversations matching ``where``, most recently active first (indexed columns, one page)."""
        query = select(Conversation)
        if where.status is not None:
            query = query.where(Conversation.status == where.status)
        if where.channel is not None:
            query = query.where(Conversation.channel == where.channel)
        if where.flow is not None:
            query = query.where(Conversation.flow == where.flow)
        if where.outdated is not None:
            if not where.outdated:
                return []
            query = query.where(
                Conversation.status != ENDED,
                or_(
                    *(
                        and_(col(Conversation.flow) == name, col(Conversation.revision) != live)
                        for name, live in sorted(where.outdated.items())
                    )
                ),
            )
        if where.queue is not None:
            query = query.where(Conversation.queue == where.queue)
        if where.assignee is not None:
            query = query.where(Conversation.assigned_agent == where.assignee)
        if where.unassigned:
            query = query.where(col(Conversation.assigned_agent).is_(None), Conversation.status == HANDOFF)
        if where.label is not None:
            query = query.where(self._label_clause(where.label))
        snoozed = and_(col(Conversation.status) != ENDED, snoozed_clause(now or utcnow()))
        query = query.where(snoozed if where.snoozed else ~snoozed)
        if where.visible_queues is not None:
            query = query.where(visible_clause(where.visible_queues, where.viewer_agent, where.described_queues))
        query = query.order_by(col(Conversation.updated_at).desc(), col(Conversation.id)).offset(offset).limit(limit)
        with self._read() as session:
            return list(session.exec(query).all())
