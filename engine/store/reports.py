"""What reports and the people metrics read: hand-off events, agents' replies, ratings, queues, presence.

A month of reports is two range queries, never one query per conversation: the
conversations active since the range's start (``conversation.updated_at`` is
indexed, and every log line moves it), joined to their event rows and agents'
replies through the message table's (conversation, direction) key; and the
ratings given in the range (``csat_rating.at`` is indexed). The arithmetic is
:mod:`engine.people.reports`'s.

:func:`observe_line` feeds the people histograms and counters as log lines are
written (the log is where assignments, replies, resolutions and ratings all pass).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_
from sqlalchemy import select as sql_select
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from engine import metrics
from engine.message_log import RecordInput
from engine.people.reports import RESOLVED, LogEvent, Rating, Report, compute
from engine.store.base import StoreBase, log
from engine.store.conversations import HANDOFF
from engine.store.tables import AgentQueue, Conversation, CsatRating, Message, UserAccount

#: What ``agent:<id>`` senders start with (the transcript's name of an agent).
AGENT_PREFIX = "agent:"
PRESENCES = ("online", "away", "offline")


def _when(at: str, fallback: datetime) -> datetime:
    """A log line's own time (workflow time, ISO 8601); when it was stored if that cannot be read."""
    try:
        moment = datetime.fromisoformat(at)
    except (TypeError, ValueError):
        return fallback
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class ReportsMixin(StoreBase):
    """Agent and queue reports over a time range; queue and presence counts for the metrics."""

    def report_lines(self, since: datetime) -> list[LogEvent]:
        """Events and agents' replies of every conversation with activity since ``since``, in no set order."""
        # Eight columns: sqlmodel's typed select stops at four.
        query = (
            sql_select(
                col(Message.conversation_id),
                col(Message.seq),
                col(Message.direction),
                col(Message.status),
                col(Message.sender),
                col(Message.text),
                col(Message.at),
                col(Message.created_at),
            )
            .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
            .where(
                col(Conversation.updated_at) >= since,
                or_(
                    col(Message.direction) == "event",
                    and_(col(Message.direction) == "out", col(Message.sender).startswith(AGENT_PREFIX)),
                ),
            )
        )
        lines = []
        with self._read() as session:
            for conversation_id, seq, direction, status, sender, text, at, created_at in session.execute(query):
                agent = sender.removeprefix(AGENT_PREFIX) if sender.startswith(AGENT_PREFIX) else ""
                kind = "reply" if direction == "out" else status
                lines.append(
                    LogEvent(
                        conversation_id=conversation_id,
                        seq=seq,
                        kind=kind,
                        at=_when(at, created_at),
                        agent=agent,
                        queue=text if kind == "handoff" else "",
                    )
                )
        return lines

    def ratings_between(self, since: datetime, until: datetime) -> list[Rating]:
        query = select(CsatRating).where(col(CsatRating.at) >= since, col(CsatRating.at) < until)
        with self._read() as session:
            return [Rating(r.rating, r.at, r.agent, r.queue) for r in session.exec(query)]

    def report(self, since: datetime, until: datetime) -> Report:
        """Per agent and per queue figures of ``[since, until)`` (see :mod:`engine.people.reports`)."""
        return compute(self.report_lines(since), self.ratings_between(since, until), since, until)

    def agent_names(self, agents: Collection[str]) -> dict[str, str]:
        """Display names of the agents among ``agents`` that are users (ids as text); tokens are their own name."""
        ids = {int(a) for a in agents if a.isdecimal()}
        if not ids:
            return {}
        query = select(UserAccount.id, UserAccount.display_name).where(col(UserAccount.id).in_(ids))
        with self._read() as session:
            return {str(user_id): name for user_id, name in session.exec(query)}

    def queue_waiting(self) -> dict[str, tuple[int, datetime | None]]:
        """Per queue: conversations waiting for an agent now, and since when the longest has waited."""
        query = (
            select(Conversation.queue, func.count(), func.min(Conversation.waiting_since))
            .where(
                Conversation.status == HANDOFF,
                col(Conversation.assigned_agent).is_(None),
                col(Conversation.waiting_since).is_not(None),
            )
            .group_by(col(Conversation.queue))
        )
        with self._read() as session:
            rows = session.exec(query).all()
        found: dict[str, tuple[int, datetime | None]] = {}
        for queue, count, least in rows:
            oldest = least
            if isinstance(least, str):  # should min() give SQLite's stored text back, not the column's type
                oldest = _when(least, datetime.now(UTC))
            elif least is not None and least.tzinfo is None:
                oldest = least.replace(tzinfo=UTC)
            found[queue or ""] = (int(count), oldest)
        return found

    def presence_by_queue(self, described: Mapping[str, Collection[str]] | None = None) -> dict[tuple[str, str], int]:
        """(queue, presence) -> how many enabled members; ``described`` adds queues of the settings (member e-mails).

        Queues described by admins are read from the store; a member of several queues
        counts in each.
        """
        with self._read() as session:
            users = session.exec(
                select(UserAccount.id, UserAccount.email, UserAccount.presence).where(
                    col(UserAccount.disabled_at).is_(None)
                )
            ).all()
            queues = session.exec(select(AgentQueue.name, AgentQueue.members)).all()
        by_id = {user_id: presence for user_id, _email, presence in users}
        by_email = {email.lower(): user_id for user_id, email, _presence in users if user_id is not None}
        members: dict[str, set[int]] = {name: {int(m) for m in ids or []} for name, ids in queues}
        for name, emails in (described or {}).items():
            found = {user_id for e in emails if (user_id := by_email.get(e.lower())) is not None}
            members.setdefault(name, set()).update(found)
        counts: dict[tuple[str, str], int] = {}
        for name, ids in members.items():
            for presence in PRESENCES:
                counts[(name, presence)] = 0
            for user_id in ids:
                state = by_id.get(user_id)
                if state is not None:
                    counts[(name, state if state in PRESENCES else "offline")] += 1
        return counts


def _latest_event(
    db: Connection | Session, conversation_id: str, kinds: Collection[str], before: int, sender: str = ""
) -> Any:
    """(seq, at, text) of the conversation's latest event of ``kinds`` before ``seq`` ``before``, or None."""
    query = (
        sql_select(col(Message.seq), col(Message.at), col(Message.text), col(Message.created_at))
        .where(
            col(Message.conversation_id) == conversation_id,
            col(Message.direction) == "event",
            col(Message.status).in_(list(kinds)),
            col(Message.seq) < before,
        )
        .order_by(col(Message.seq).desc())
        .limit(1)
    )
    if sender:
        query = query.where(col(Message.sender) == sender)
    return db.execute(query).first()


def observe_line(db: Connection | Session, entry: RecordInput, seq: int) -> None:
    """Count a log line just written as row ``seq`` in the people metrics (call once per *new* row).

    Reads only the conversation's earlier event rows (its (conversation, direction) key):
    the hand-off before an ``assigned`` (assignment wait), the assignment before an
    agent's first reply (first reply) or a resolution (handle time); a ``csat`` event
    counts its rating. A metric must never fail a write: errors are logged and dropped.
    """
    try:
        _observe(db, entry, seq)
    except Exception:  # pragma: no cover - a metric is not worth a lost log line
        log.debug("people metrics: line %s of %s not counted", seq, entry.conversation_id, exc_info=True)


def _observe(db: Connection | Session, entry: RecordInput, seq: int) -> None:
    at = _when(entry.at, datetime.now(UTC))
    conversation = entry.conversation_id

    def queue_before() -> str:
        handoff = _latest_event(db, conversation, ("handoff",), seq)
        return str(handoff.text) if handoff is not None else ""

    if entry.direction == "out" and entry.sender.startswith(AGENT_PREFIX):
        metrics.observe_agent_reply(entry.channel)
        assigned = _latest_event(db, conversation, ("assigned",), seq, sender=entry.sender)
        if assigned is None:
            return
        earlier = db.execute(
            sql_select(func.count())
            .select_from(Message)
            .where(
                col(Message.conversation_id) == conversation,
                col(Message.direction) == "out",
                col(Message.sender) == entry.sender,
                col(Message.seq) > assigned.seq,
                col(Message.seq) < seq,
            )
        ).scalar_one()
        if not earlier:
            metrics.observe_first_reply(queue_before(), _seconds(_when(assigned.at, assigned.created_at), at))
    elif entry.direction != "event":
        return
    elif entry.status == "assigned":
        handoff = _latest_event(db, conversation, ("handoff", "assigned"), seq)
        if handoff is not None and _latest_event(db, conversation, ("handoff",), seq) == handoff:
            metrics.observe_assignment(str(handoff.text), _seconds(_when(handoff.at, handoff.created_at), at))
    elif entry.status in RESOLVED:
        assigned = _latest_event(db, conversation, ("assigned",), seq)
        if assigned is not None:
            metrics.observe_handled(queue_before(), _seconds(_when(assigned.at, assigned.created_at), at))
    elif entry.status == "csat":
        rating = entry.meta.get("rating")
        if isinstance(rating, int) and 1 <= rating <= 5:
            metrics.observe_csat(entry.meta.get("queue") or queue_before(), rating)


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())
