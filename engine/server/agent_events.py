"""The agents' events, who sees which, and the order the feed releases them in (pure: no I/O).

Frames on ``/ws/agent`` are ``{"seq": int, "kind": str, "data": {...}}``:

- ``message``: a transcript row (customer, bot and agent messages, notes, hand-offs and
  other events); ``seq`` is the row's own.
- ``conversation``: the conversation's inbox row after a change, ``seq`` the latest row of
  its log the change came with. ``data.visible`` is False (and nothing else but ``id``
  is sent) when a conversation this socket was shown leaves the viewer's sight
  (transferred to a queue they are not in, taken by someone outside their queues).
- ``presence`` (``user_id``, ``agent_id``, ``presence``, ``before``, ``by``) and ``typing``
  (``conversation_id``, ``typing``): ephemeral; their ``seq`` is the cursor at the time.

The ``seq`` of every frame is a cursor: ``?since=<seq>`` gets everything after it.

:class:`SeqGate` is why a cursor can be trusted on PostgreSQL: there, sequence values are
drawn at insert and committed in any order, so a row with seq 11 may be visible before
the one with seq 10. The gate releases rows strictly in seq order and holds everything
above a hole until the hole fills or is known to be final (no transaction that could
still fill it runs any more, or it waited :data:`GAP_WAIT_S`). A socket therefore never
gets 11 before 10, and after a reconnect ``seq > since`` is exactly what it missed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.people.roles import Principal, Role, sees_every_queue

#: The longest a hole in the seqs holds the feed back (a transaction that long is exceptional).
GAP_WAIT_S = 5.0
#: Holes remembered at most; beyond, the oldest are given up (a burst of conflicting inserts).
MAX_GAPS = 2000

MESSAGE = "message"
CONVERSATION = "conversation"
PRESENCE = "presence"
TYPING = "typing"
#: Kinds whose events come from the message log (replayable by seq).
LOGGED_KINDS = frozenset({MESSAGE, CONVERSATION})
#: Kinds anyone may publish on the hub (the log's kinds come from the store only).
EPHEMERAL_KINDS = frozenset({PRESENCE, TYPING})


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def message_data(row: dict[str, Any]) -> dict[str, Any]:
    """A feed row as the console shows it (an event's meta only: an AI answer's is the vendor's detail)."""
    data = {
        "seq": row["seq"],
        "conversation_id": row["conversation_id"],
        "id": row["message_id"],
        "direction": row["direction"],
        "channel": row["channel"],
        "sender": row["sender"],
        "text": row["text"],
        "choices": list(row.get("choices") or []),
        "status": row["status"],
        "at": row["at"],
    }
    if row["direction"] == "event":
        data["meta"] = dict(row.get("meta") or {})
    return data


def conversation_data(row: dict[str, Any]) -> dict[str, Any]:
    """An inbox row as the event carries it."""
    return {
        "id": row["id"],
        "visible": True,
        "status": row["status"],
        "queue": row["queue"],
        "assigned_agent": row["assigned_agent"],
        "labels": list(row.get("labels") or []),
        "snoozed_until": _iso(row.get("snoozed_until")),
        "snoozed_until_reply": bool(row.get("snoozed_until_reply")),
        "waiting_since": _iso(row.get("waiting_since")),
        "last_message": row.get("last_message") or "",
        "last_message_at": _iso(row.get("last_message_at")),
        "channel": row["channel"],
        "contact_id": row["contact_id"],
        "updated_at": _iso(row.get("updated_at")),
    }


@dataclass(frozen=True, slots=True)
class Event:
    """One event as the hub passes it around: what the frame says, plus what visibility needs.

    ``queue`` and ``assigned`` are the conversation's (message, conversation, typing);
    ``user_id`` the person a presence event is about.
    """

    seq: int
    kind: str
    data: dict[str, Any]
    conversation_id: str | None = None
    queue: str | None = None
    assigned: str | None = None
    user_id: int | None = None

    def frame(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "data": self.data}


@dataclass(slots=True)
class Viewer:
    """Who holds a socket and what they may see (refreshed while it stays open: queues change)."""

    principal: Principal
    queues: frozenset[str] = frozenset()
    teammates: frozenset[int] = frozenset()
    #: every described queue: a conversation in a queue nobody described (an "open" queue)
    #: is every agent's, as the REST API and the dispatcher see it
    described: frozenset[str] | None = None

    @property
    def sees_all(self) -> bool:
        return sees_every_queue(self.principal.role)

    def sees_conversation(self, queue: str | None, assigned: str | None) -> bool:
        if self.sees_all:
            return True
        if assigned is not None and assigned == self.principal.agent_id:
            return True
        if queue is None:
            return False
        return queue in self.queues or (self.described is not None and queue not in self.described)

    def sees_user(self, user_id: int | None) -> bool:
        if self.sees_all:
            return True
        return user_id is not None and (user_id in self.teammates or user_id == self.principal.user_id)

    def sees(self, event: Event) -> bool:
        if event.kind == PRESENCE:
            return self.sees_user(event.user_id)
        return self.sees_conversation(event.queue, event.assigned)


def may_connect(role: Role) -> bool:
    """Editors work on flows only: the agents' stream is not theirs."""
    return role is not Role.EDITOR


@dataclass
class SeqGate:
    """Releases feed rows in seq order, holding back those above a hole that may still fill.

    ``cursor``: every seq up to it is settled (released, or a final hole). ``read_to``: the
    highest seq read. ``gaps``: holes in (cursor, read_to], with the database time they
    were first seen and the monotonic time (for :data:`GAP_WAIT_S`). On SQLite holes
    cannot fill later (one writer at a time commits in seq order): ``track_gaps=False``.
    """

    cursor: int = 0
    track_gaps: bool = True
    read_to: int = 0
    gaps: dict[int, tuple[datetime | None, float]] = field(default_factory=dict)
    held: dict[int, dict[str, Any]] = field(default_factory=dict)

    def reset(self, head: int) -> None:
        """Start at ``head`` (a fresh start, or after nobody listened for a while).

        A row whose transaction was still open at this moment with a seq below ``head``
        is not announced live; it is in the transcript (and in a replay from before it).
        """
        self.cursor = self.read_to = head
        self.held.clear()
        self.gaps.clear()

    def waiting_on(self) -> list[int]:
        """The holes to read again with the next read."""
        return sorted(self.gaps)

    def take(self, rows: Iterable[dict[str, Any]], *, clock: datetime | None, now: float) -> None:
        """Rows read (``seq > read_to`` or a hole's), in seq order."""
        for row in rows:
            seq = int(row["seq"])
            if seq <= self.cursor or seq in self.held:
                continue
            if seq in self.gaps:
                del self.gaps[seq]
            elif seq > self.read_to:
                if self.track_gaps:
                    for missing in range(self.read_to + 1, seq):
                        if missing > self.cursor and missing not in self.held:
                            self.gaps[missing] = (clock, now)
                self.read_to = seq
            else:
                continue  # below read_to and not a hole: seen already
            self.held[seq] = row
        self._trim()

    def expire(self, now: float, final_before: datetime | None = None) -> None:
        """Give up holes that waited too long, or whose writers are known gone (seen at or before ``final_before``)."""
        for seq, (seen, since) in list(self.gaps.items()):
            if now - since >= GAP_WAIT_S or (final_before is not None and seen is not None and seen <= final_before):
                del self.gaps[seq]

    def latest_gap_clock(self) -> datetime | None:
        """When the newest hole was seen (database time): writers older than that may still fill one."""
        clocks = [seen for seen, _ in self.gaps.values() if seen is not None]
        return max(clocks) if clocks else None

    def release(self) -> list[dict[str, Any]]:
        """The rows that may go out now, in seq order; ``cursor`` moves past them."""
        limit = min(self.gaps) - 1 if self.gaps else self.read_to
        ready = sorted(seq for seq in self.held if seq <= limit)
        out = [self.held.pop(seq) for seq in ready]
        self.cursor = max(self.cursor, limit)
        return out

    def unrelease(self, rows: list[dict[str, Any]]) -> None:
        """Take back rows :meth:`release` gave out (they could not be sent): released again next time."""
        if rows:
            self.held.update({int(row["seq"]): row for row in rows})
            self.cursor = min(self.cursor, int(rows[0]["seq"]) - 1)

    def _trim(self) -> None:
        if len(self.gaps) > MAX_GAPS:
            for seq in sorted(self.gaps)[: len(self.gaps) - MAX_GAPS]:
                del self.gaps[seq]
