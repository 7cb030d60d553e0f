"""The message log: every message in and out, delivery outcomes and conversation events.

Entries are keyed by (conversation, direction, message id): the runtime writes
from activities, which Temporal may run more than once, so writing an entry again
updates it (``failed`` becomes ``sent``) instead of adding a row. Each entry also
moves the conversation row along: its activity time, its flow revision and its
status (open, handoff, ended).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from engine.message_log import RecordInput
from engine.store.base import ROW_LOCK, log
from engine.store.channel_log import PAYLOAD_REF, ChannelLogMixin
from engine.store.columns import utcnow
from engine.store.conversations import ENDED, HANDOFF, OPEN, find_or_create_contact
from engine.store.fastlog import MESSAGES, Logged, eligible, entry_columns, last_message_text, moment, record_new
from engine.store.reports import observe_line
from engine.store.tables import Conversation, CsatRating, Message

#: How far a status has come. A repeated write never moves an entry back: a local activity
#: re-run with its workflow task writes "received" again after "blocked", a late failure
#: report must not undo "sent". Unlisted statuses (sent, blocked, handoff, ...) are final.
#: queued (logged, not yet handed over) < received < failed ...: a redelivery never moves a row back.
_PROGRESS = {"queued": -1, "received": 0, "stored": 0, "failed": 1}
_FINAL = 2

#: Events after which the bot has the conversation again.
_BACK_TO_BOT = frozenset({"handoff_cancelled", "resolved", "handoff_resolved"})


class MessagesMixin(ChannelLogMixin):
    """The MessageLog of the runtime (``record``) and the transcripts the API serves."""

    def record(self, entry: RecordInput) -> None:
        """Write one log entry (the runtime's MessageLog protocol); idempotent."""
        self._log(entry, None, None)

    async def write(self, entry: RecordInput) -> None:
        """``record`` from an event loop (the MessageLog protocol's async side), on the write thread."""
        await self.in_write_thread(self.record, entry)

    def record_message(
        self, entry: RecordInput, *, choices: list[str] | None = None, raw_ref: str | None = None
    ) -> Message:
        """Write one log entry with what the runtime's entry does not carry: reply choices, raw payload.

        Returns the entry's row (its ``seq`` is the clients' cursor). For an inbound
        message already logged in another conversation, that row is returned.
        """
        written = self._log(entry, choices, raw_ref)
        return written.row() if isinstance(written, Logged) else written

    def record_inbound(self, entry: RecordInput, *, payload: Mapping[str, Any] | None = None) -> tuple[Message, bool]:
        """``record_message`` for a customer's message, and whether it is new (not a redelivery).

        ``payload`` is the vendor's raw payload of it: kept first (one call, for the
        write thread), so a row never points at a payload that is not there.
        """
        raw_ref = None
        if payload is not None:
            self.keep_payload(entry.channel, entry.message_id, payload)
            raw_ref = PAYLOAD_REF
        if eligible(entry) and (logged := record_new(self._writer, entry, None, raw_ref)) is not None:
            return logged.row(), True
        created: list[bool] = []
        row = self._write_retrying(lambda session: _record(session, entry, None, raw_ref, created))
        return row, bool(created)

    def _log(self, entry: RecordInput, choices: list[str] | None, raw_ref: str | None) -> Logged | Message:
        """The fast path when the entry is a new message, else the full rules."""
        if eligible(entry) and (logged := record_new(self._writer, entry, choices, raw_ref)) is not None:
            if entry.sender.startswith("agent:"):
                # Agents' replies count in the people metrics (first reply, replies by channel);
                # customers' and the bot's messages, the hot path, never pay this read.
                with self._read() as session:
                    observe_line(session, entry, logged.seq)
            return logged
        return self._write_retrying(lambda session: _record(session, entry, choices, raw_ref))

    def settle_inbound(self, seq: int, conversation_id: str, status: str, detail: str = "") -> Message | None:
        """Put a logged customer message where and how it ended up: its conversation and status.

        The server logs a message before handing it to its conversation; if that
        conversation had just ended, the message goes to the next one, and if the
        hand-over failed, the row says so (and a retry of the message sets it back).
        """
        with self._write() as session:
            row = session.get(Message, seq)
            if row is None or row.direction != "in":
                return None
            row.conversation_id, row.status, row.detail = conversation_id, status, detail
            session.add(row)
            session.flush()
            return row

    def mark_handed_over(self, seq: int) -> None:
        """A queued message reached its conversation: ``received`` (one statement; every webhook message pays it)."""
        statement = (
            update(MESSAGES)
            .where(MESSAGES.c.seq == seq, MESSAGES.c.status == "queued")
            .values(status="received", detail="")
        )
        with self._writer.begin() as connection:
            connection.execute(statement)

    def queued_inbound(self, limit: int = 10_000) -> list[Message]:
        """Customers' messages logged but not yet handed to their conversation, oldest first."""
        query = (
            select(Message)
            .where(Message.direction == "in", Message.status == "queued")
            .order_by(col(Message.seq))
            .limit(limit)
        )
        with self._read() as session:
            return list(session.exec(query).all())

    def transcript(self, conversation_id: str, *, after_seq: int = 0, limit: int = 500) -> list[Message]:
        """The conversation's log in order, from the entry after ``after_seq`` (a client's cursor)."""
        query = (
            select(Message)
            .where(Message.conversation_id == conversation_id, col(Message.seq) > after_seq)
            .order_by(col(Message.seq))
            .limit(limit)
        )
        with self._read() as session:
            return list(session.exec(query).all())


def _record(
    session: Session,
    entry: RecordInput,
    choices: list[str] | None,
    raw_ref: str | None,
    created: list[bool] | None = None,
) -> Message:
    # Writers of one conversation take turns from here on PostgreSQL (SQLite serialises every
    # writer): a repeated entry's read-then-update cannot undo a concurrent one ("sent" back to
    # "failed"), and a new entry's seq comes from the sequence in commit order, so a client's
    # "after seq N" cursor never passes an entry that is not committed yet.
    conversation = session.get(Conversation, entry.conversation_id, with_for_update=ROW_LOCK) or _adopt(session, entry)
    row = session.exec(
        select(Message).where(
            Message.conversation_id == entry.conversation_id,
            Message.direction == entry.direction,
            Message.message_id == entry.message_id,
        )
    ).first()
    if row is None:
        if entry.direction == "in" and (elsewhere := _inbound_elsewhere(session, entry)) is not None:
            return elsewhere
        row = Message(**entry_columns(entry, choices, raw_ref))
        session.add(row)
        session.flush()  # a concurrent twin fails here, inside the caller's retry
        changed = True
        if created is not None:
            created[:] = [True]
        # People's lines count once, as new rows, in the people metrics (the fast path counts
        # the agents' replies it takes; its customer and bot messages are not theirs).
        assert row.seq is not None
        observe_line(session, entry, row.seq)
    else:
        changed = _advance(row, entry, choices, raw_ref)
        session.add(row)
    _touch(session, conversation, entry, changed)
    session.flush()  # the row's seq and values are final before the session closes
    return row


def _inbound_elsewhere(session: Session, entry: RecordInput) -> Message | None:
    """The row of the channel's message id if it is logged in another conversation (then: skip)."""
    other = session.exec(
        select(Message).where(
            Message.direction == "in", Message.channel == entry.channel, Message.message_id == entry.message_id
        )
    ).first()
    if other is None:
        return None
    # The channel redelivered a message that was routed to another conversation: one copy is enough.
    log.warning(
        "inbound %s message %s is already logged in conversation %s; not logged again in %s",
        entry.channel,
        entry.message_id,
        other.conversation_id,
        entry.conversation_id,
    )
    return other


def _advance(row: Message, entry: RecordInput, choices: list[str] | None, raw_ref: str | None) -> bool:
    """Update a repeated entry where it moved forward; True if its status changed."""
    if entry.replaces_text and entry.text != row.text:
        row.text = entry.text  # the inbound pipeline changed it: the log keeps what the flow saw
    if choices is not None:
        row.choices = list(choices)
    if raw_ref is not None:
        row.raw_ref = raw_ref
    if entry.channel_message_id and not row.channel_message_id:
        row.channel_message_id = entry.channel_message_id
    if entry.status == row.status:
        if entry.detail and entry.detail != row.detail:
            row.detail = entry.detail
        return False
    if _PROGRESS.get(entry.status, _FINAL) < _PROGRESS.get(row.status, _FINAL):
        return False
    row.status, row.detail = entry.status, entry.detail
    return True


def _adopt(session: Session, entry: RecordInput) -> Conversation:
    """A conversation row for one started outside the server (a worker's own, a test's)."""
    contact = find_or_create_contact(session, entry.channel, f"conversation:{entry.conversation_id}")
    conversation = Conversation(
        id=entry.conversation_id,
        contact_id=contact.id,
        channel=entry.channel,
        status=OPEN,
        flow=entry.flow,
        revision=entry.revision,
    )
    session.add(conversation)
    session.flush()
    return conversation


def _touch(session: Session, conversation: Conversation, entry: RecordInput, changed: bool) -> None:
    """Move the conversation along with an entry: activity time, revision and, for news, status."""
    now = utcnow()
    conversation.updated_at = now
    if entry.flow:
        conversation.flow = entry.flow
    if entry.revision:
        conversation.revision = entry.revision
    if changed and entry.direction in ("in", "out"):
        # As the fast path's UPDATE does (engine.store.fastlog): messages, never events or notes.
        conversation.last_message = last_message_text(entry.text)
        conversation.last_message_at = moment(entry.at) or now
        if entry.direction == "in":
            conversation.snoozed_until_reply = False  # the customer wrote: back in the inbox
    if changed and conversation.status != ENDED:
        # Only news moves the status: a repeated old "handoff" must not undo a later return to the bot.
        _transition(session, conversation, entry, now)
    session.add(conversation)


def _transition(session: Session, conversation: Conversation, entry: RecordInput, now: datetime) -> None:
    if entry.status == ENDED:
        conversation.status, conversation.end_status, conversation.ended_at = ENDED, entry.detail or ENDED, now
        conversation.assigned_agent = None
        conversation.waiting_since = None
    elif entry.direction == "event":
        _people_event(session, conversation, entry, now)
    elif entry.direction == "out" and conversation.status == HANDOFF:
        if entry.sender.startswith("agent:"):
            # A reply claims a conversation nobody holds; over another's claim (a supervisor
            # stepping in) the holder stays (the workflow's ``assigned`` events move it).
            conversation.assigned_agent = conversation.assigned_agent or entry.sender.removeprefix("agent:")
            conversation.waiting_since = None
        elif entry.sender == "bot" and _after_handoff(session, conversation.id, entry.at):
            # The bot speaks again only once the agent has resolved the hand-off.
            _back_to_bot(conversation)


def _people_event(session: Session, conversation: Conversation, entry: RecordInput, now: datetime) -> None:
    """What a logged event says about the conversation's inbox row (see engine.flow.steps_people)."""
    status, meta = entry.status, entry.meta or {}
    if status == HANDOFF:
        # A hand-off, a transfer to another queue, a reopen: it waits there, nobody holds it.
        conversation.status, conversation.queue = HANDOFF, entry.text or conversation.queue
        conversation.assigned_agent, conversation.waiting_since = None, moment(entry.at) or now
    elif status in _BACK_TO_BOT:
        _back_to_bot(conversation)
    elif status == "assigned":
        conversation.assigned_agent = entry.sender.removeprefix("agent:") or None
        conversation.waiting_since = None
    elif status == "labels":
        labels = meta.get("labels")
        conversation.labels = [str(label) for label in labels] if isinstance(labels, list) else []
    elif status == "snoozed":
        until = meta.get("until")
        conversation.snoozed_until = moment(until) if isinstance(until, str) else None
        conversation.snoozed_until_reply = bool(meta.get("until_reply"))
    elif status == "unsnoozed":
        conversation.snoozed_until, conversation.snoozed_until_reply = None, False
    elif status == "csat":
        _rate(session, conversation, entry, now)


def _back_to_bot(conversation: Conversation) -> None:
    conversation.status, conversation.assigned_agent, conversation.waiting_since = OPEN, None, None
    conversation.snoozed_until, conversation.snoozed_until_reply = None, False


def _rate(session: Session, conversation: Conversation, entry: RecordInput, now: datetime) -> None:
    """A customer's rating: one row per conversation (a second rating replaces the first)."""
    meta = entry.meta or {}
    try:
        rating = int(meta.get("rating", 0))
    except (TypeError, ValueError):
        return
    if not 1 <= rating <= 5:
        return
    agent = meta.get("agent")
    row = session.get(CsatRating, conversation.id) or CsatRating(conversation_id=conversation.id, rating=rating)
    row.rating = rating
    row.agent = str(agent) if agent else None
    row.queue = str(meta.get("queue") or conversation.queue or "") or None
    row.at = moment(entry.at) or now
    session.add(row)


def _after_handoff(session: Session, conversation_id: str, at: str) -> bool:
    """True if ``at`` is later than the latest hand-off event.

    A bot reply queued together with the hand-off (a "connecting you" message) may be
    logged after the hand-off event; it has the same workflow time, so it does not count.
    Times are compared as times, not as text: ISO strings differ in precision.
    """
    starts = session.exec(
        select(Message.at).where(
            Message.conversation_id == conversation_id, Message.direction == "event", Message.status == HANDOFF
        )
    ).all()
    try:
        moment = datetime.fromisoformat(at)
        return bool(starts) and all(moment > datetime.fromisoformat(start) for start in starts)
    except (TypeError, ValueError):
        return False  # times in an unknown form: keep the status rather than guess
