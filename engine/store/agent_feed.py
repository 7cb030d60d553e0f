"""What the agents' event stream (``/ws/agent``) reads: the message log as a feed, inbox rows, scopes.

The feed is the ``message`` table read by ``seq``: every transcript row (customer,
bot and agent messages, notes, hand-offs and other events) is an event, and its
``seq`` is the cursor a reconnecting console sends back. Reads are Core SELECTs of
the columns the socket shows (no ORM rows: the hub reads on every wake-up).

On PostgreSQL the hub needs two more things: a wake-up when a row is committed by
any process (``install_feed_notify``: a statement trigger on ``message`` sending
``NOTIFY flowdesk_agent``), and a way to tell a hole in the ``seq`` sequence that
will never fill (a rolled-back insert, an ``ON CONFLICT DO NOTHING`` that drew a
value) from one whose transaction has not committed yet (``writers_before``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select, text

from engine.people.settings import QueueSpec
from engine.store.base import StoreBase
from engine.store.tables import AgentQueue, Conversation, Message, UserAccount

MESSAGES = Message.__table__  # type: ignore[attr-defined]
CONVERSATIONS = Conversation.__table__  # type: ignore[attr-defined]
USERS = UserAccount.__table__  # type: ignore[attr-defined]
QUEUES = AgentQueue.__table__  # type: ignore[attr-defined]

#: The channel the feed's wake-ups and the hub's ephemeral events (presence, typing) travel on.
NOTIFY_CHANNEL = "flowdesk_agent"

#: The columns of a feed row (a transcript entry as the console shows it).
_FEED_COLUMNS = (
    MESSAGES.c.seq,
    MESSAGES.c.conversation_id,
    MESSAGES.c.direction,
    MESSAGES.c.message_id,
    MESSAGES.c.channel,
    MESSAGES.c.sender,
    MESSAGES.c.text,
    MESSAGES.c.choices,
    MESSAGES.c.status,
    MESSAGES.c.meta,
    MESSAGES.c.at,
)

#: The inbox row of a conversation: what an event of kind ``conversation`` carries.
_INBOX_COLUMNS = (
    CONVERSATIONS.c.id,
    CONVERSATIONS.c.status,
    CONVERSATIONS.c.queue,
    CONVERSATIONS.c.assigned_agent,
    CONVERSATIONS.c.labels,
    CONVERSATIONS.c.snoozed_until,
    CONVERSATIONS.c.snoozed_until_reply,
    CONVERSATIONS.c.waiting_since,
    CONVERSATIONS.c.last_message,
    CONVERSATIONS.c.last_message_at,
    CONVERSATIONS.c.channel,
    CONVERSATIONS.c.contact_id,
    CONVERSATIONS.c.updated_at,
)

# One statement trigger: a transaction inserting many rows notifies once, and PostgreSQL
# folds identical notifications of one transaction into one. Delivered at commit, so a
# wake-up never comes before the rows are visible.
_NOTIFY_DDL = (
    "SELECT pg_advisory_xact_lock(hashtext('flowdesk_agent_feed_notify'))",
    f"""CREATE OR REPLACE FUNCTION flowdesk_agent_feed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{NOTIFY_CHANNEL}', '');
    RETURN NULL;
END $$""",
    "DROP TRIGGER IF EXISTS flowdesk_agent_feed ON message",
    "CREATE TRIGGER flowdesk_agent_feed AFTER INSERT ON message "
    "FOR EACH STATEMENT EXECUTE FUNCTION flowdesk_agent_feed_notify()",
)


@dataclass(frozen=True, slots=True)
class FeedRead:
    """Rows read from the feed, and the database's clock after reading them (PostgreSQL; else None)."""

    rows: list[dict[str, Any]]
    clock: datetime | None


@dataclass(frozen=True, slots=True)
class AgentScope:
    """What one person may see: the queues they are a member of and the people who share one."""

    queues: frozenset[str]
    teammates: frozenset[int]
    #: False if the account is gone or disabled (the socket closes)
    active: bool = True
    role: str = ""


def _as_dicts(result: Iterable[Any]) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in result]


class AgentFeedMixin(StoreBase):
    """The feed, inbox rows and scopes the agents' socket hub reads."""

    # -- the feed ------------------------------------------------------------------------

    def feed_head(self) -> int:
        """The highest ``seq`` logged so far (0 for an empty log)."""
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.coalesce(func.max(MESSAGES.c.seq), 0))).scalar_one())

    def feed_present(self, low: int, high: int) -> set[int]:
        """Which seqs in (low, high] exist (the hub's gap scan when it starts on PostgreSQL)."""
        query = select(MESSAGES.c.seq).where(MESSAGES.c.seq > low, MESSAGES.c.seq <= high)
        with self.engine.connect() as connection:
            return {int(seq) for seq in connection.execute(query).scalars()}

    def feed_after(self, cursor: int, *, also: Collection[int] = (), limit: int = 500) -> FeedRead:
        """Rows with ``seq > cursor`` (and those of ``also``, the holes the hub waits on), in seq order."""
        condition = MESSAGES.c.seq > cursor
        if also:
            condition = or_(condition, MESSAGES.c.seq.in_(sorted(also)))
        query = select(*_FEED_COLUMNS).where(condition).order_by(MESSAGES.c.seq).limit(limit)
        with self.engine.connect() as connection:
            rows = _as_dicts(connection.execute(query))
            clock = None
            if self.engine.dialect.name == "postgresql":
                # Taken after the rows' snapshot: every transaction that drew a seq below the
                # rows read had started before this moment (see ``writers_before``).
                clock = connection.execute(text("SELECT clock_timestamp()")).scalar_one()
        return FeedRead(rows, clock)

    def feed_between(
        self,
        after: int,
        upto: int,
        *,
        queues: Collection[str] | None = None,
        agent: str | None = None,
        described: Collection[str] | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Rows with ``after < seq <= upto`` in seq order, of conversations the viewer sees.

        ``queues=None`` means every conversation (supervisors, admins); otherwise those
        in one of ``queues``, held by ``agent``, or (given ``described``) in a queue not
        among the described ones: an open queue. Replay after a reconnect reads it.
        """
        query: Select[Any] = select(*_FEED_COLUMNS).where(MESSAGES.c.seq > after, MESSAGES.c.seq <= upto)
        if queues is not None:
            conversations = CONVERSATIONS.c
            visible = [conversations.queue.in_(sorted(queues))] if queues else []
            if agent:
                visible.append(conversations.assigned_agent == agent)
            if described is not None:
                open_queue = conversations.queue.is_not(None)
                visible.append(open_queue & conversations.queue.not_in(sorted(described)) if described else open_queue)
            if not visible:
                return []
            query = query.join(CONVERSATIONS, CONVERSATIONS.c.id == MESSAGES.c.conversation_id).where(or_(*visible))
        query = query.order_by(MESSAGES.c.seq).limit(limit)
        with self.engine.connect() as connection:
            return _as_dicts(connection.execute(query))

    def inbox_rows(self, conversation_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """The inbox rows of these conversations, by id (unknown ids are left out)."""
        if not conversation_ids:
            return {}
        query = select(*_INBOX_COLUMNS).where(CONVERSATIONS.c.id.in_(sorted(conversation_ids)))
        with self.engine.connect() as connection:
            return {row["id"]: row for row in _as_dicts(connection.execute(query))}

    # -- PostgreSQL only -----------------------------------------------------------------

    def writers_before(self, moment: datetime) -> int:
        """How many other write transactions that started before ``moment`` are still running.

        A hole in the seqs seen at ``moment`` was drawn by a transaction that had started
        by then; once none of those runs any more, the hole is final (its insert rolled
        back or was a conflict), and the hub stops waiting for it.
        """
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL AND xact_start <= :moment"
        )
        with self.engine.connect() as connection:
            return int(connection.execute(query, {"moment": moment}).scalar_one())

    def install_feed_notify(self) -> None:
        """The trigger that wakes every node's hub when a message row is committed (idempotent)."""
        if self.engine.dialect.name != "postgresql":
            return
        # Looked up first: creating a trigger locks the table against writes, which a node
        # joining a busy cluster must not do when the trigger is there already.
        exists = text("SELECT 1 FROM pg_trigger WHERE tgname = 'flowdesk_agent_feed' AND tgrelid = 'message'::regclass")
        with self.engine.connect() as connection:
            if connection.execute(exists).first() is not None:
                return
        with self._writer.begin() as connection:
            for statement in _NOTIFY_DDL:
                connection.exec_driver_sql(statement)

    def notify_agents(self, payload: str) -> None:
        """Send an ephemeral event to every node's hub (PostgreSQL; at most 8000 bytes)."""
        with self._writer.begin() as connection:
            connection.execute(
                text("SELECT pg_notify(:channel, :payload)"), {"channel": NOTIFY_CHANNEL, "payload": payload}
            )

    # -- who sees what -------------------------------------------------------------------

    def agent_scope(self, user_id: int | None, email: str, configured: Iterable[QueueSpec]) -> AgentScope:
        """The queues ``user_id`` is a member of (settings by e-mail, admin queues by id) and their teammates.

        A token (``user_id`` None) has no queues: it sees what it holds.
        """
        configured = list(configured)
        with self.engine.connect() as connection:
            user = None
            if user_id is not None:
                user = connection.execute(
                    select(USERS.c.id, USERS.c.email, USERS.c.role, USERS.c.disabled_at).where(USERS.c.id == user_id)
                ).first()
            admin_queues = [(row.name, list(row.members or [])) for row in connection.execute(select(QUEUES))]
            emails = {spec.name: set(spec.member_emails) for spec in configured}
            wanted = {e for members in emails.values() for e in members}
            ids_by_email: dict[str, int] = {}
            if wanted:
                found = connection.execute(select(USERS.c.id, USERS.c.email).where(USERS.c.email.in_(sorted(wanted))))
                ids_by_email = {row.email: int(row.id) for row in found}
        if user_id is None or user is None:
            return AgentScope(frozenset(), frozenset(), active=user_id is None)
        members: dict[str, set[int]] = {}
        for spec in configured:
            ids = {ids_by_email[e] for e in emails[spec.name] if e in ids_by_email} | set(spec.member_ids)
            members.setdefault(spec.name, set()).update(ids)
        for name, listed in admin_queues:
            members.setdefault(name, set()).update(int(i) for i in listed if str(i).isdigit())
        mine = frozenset(name for name, ids in members.items() if user_id in ids)
        teammates = frozenset(i for name in mine for i in members[name]) | {user_id}
        return AgentScope(mine, teammates, active=user.disabled_at is None, role=str(user.role))

    def presence_snapshot(self, user_ids: Collection[int] | None) -> list[dict[str, Any]]:
        """Presence of these users (None: everyone with an agent role), for a socket's snapshot."""
        query = select(USERS.c.id, USERS.c.display_name, USERS.c.role, USERS.c.presence, USERS.c.presence_at).where(
            USERS.c.disabled_at.is_(None), USERS.c.role.in_(("admin", "supervisor", "agent"))
        )
        if user_ids is not None:
            if not user_ids:
                return []
            query = query.where(USERS.c.id.in_(sorted(user_ids)))
        with self.engine.connect() as connection:
            rows = _as_dicts(connection.execute(query.order_by(USERS.c.id)))
        return [
            {
                "user_id": row["id"],
                "display_name": row["display_name"],
                "presence": row["presence"],
                "at": row["presence_at"].isoformat() if row["presence_at"] else None,
            }
            for row in rows
        ]
