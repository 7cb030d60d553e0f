"""The database tables, as sqlmodel classes.

Every table here has a hand-written migration in ``migrations/versions``; a test
compares the two, so a change here without a migration fails. Constraints and
indexes carry explicit names so that migrations can refer to them on every
database. Rows read through :class:`~engine.store.Store` are detached copies:
reading their attributes never touches the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import uuid4

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from engine.store.columns import UTCDateTime, utcnow


def new_id() -> str:
    """A random id for contacts and conversations: 32 hex digits, safe in URLs and workflow ids."""
    return uuid4().hex


class Contact(SQLModel, table=True):
    """A customer, known through one or more channel identities."""

    __tablename__: ClassVar[Any] = "contact"

    id: str = Field(default_factory=new_id, primary_key=True)
    name: str | None = None
    locale: str | None = None
    email: str | None = None
    phone: str | None = None
    tags: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Identity(SQLModel, table=True):
    """How a channel names a contact (a Telegram chat id, an e-mail address, a web-chat visitor id)."""

    __tablename__: ClassVar[Any] = "identity"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identity_channel_external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: str = Field(foreign_key="contact.id", index=True)
    channel: str
    external_id: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Conversation(SQLModel, table=True):
    """One conversation: ``status`` is open, handoff or ended; ``end_status`` says how it ended."""

    __tablename__: ClassVar[Any] = "conversation"

    id: str = Field(default_factory=new_id, primary_key=True)
    contact_id: str = Field(foreign_key="contact.id", index=True)
    channel: str
    status: str = Field(default="open", index=True)
    end_status: str | None = None
    flow: str = Field(default="", index=True)
    revision: str = ""
    #: the agent holding it: a user's id (as text) or ``token:<name>``; None while it waits
    assigned_agent: str | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Indexed: lists are sorted by it, newest first.
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: the queue of its current (or latest) hand-off; None if it was never handed off
    queue: str | None = Field(default=None, index=True)
    #: since when it waits for an agent (entered a queue, unassigned); None once an agent holds it
    waiting_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    #: hidden from the inbox until then (``snoozed_until_reply``: or until the customer writes)
    snoozed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    snoozed_until_reply: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default="0"))
    #: the latest customer, bot or agent message (not events or notes): the inbox shows it
    last_message: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    last_message_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Message(SQLModel, table=True):
    """One line of a conversation's log: a message in or out, or an event (hand-off, end).

    ``seq`` only grows (SQLite AUTOINCREMENT, a sequence on PostgreSQL), so clients
    use it as a cursor: "everything after seq N".
    """

    __tablename__: ClassVar[Any] = "message"
    __table_args__ = (
        UniqueConstraint("conversation_id", "direction", "message_id", name="uq_message_conversation_direction_id"),
        # A channel's message id names one inbound message, whatever conversation it was routed to.
        Index(
            "uq_message_inbound_channel_id",
            "channel",
            "message_id",
            unique=True,
            sqlite_where=text("direction = 'in'"),
            postgresql_where=text("direction = 'in'"),
        ),
        # Vendors report delivery statuses by their own id of the message we sent.
        Index("ix_message_channel_message_id", "channel", "channel_message_id"),
        # Without AUTOINCREMENT, SQLite may reuse the highest rowid after a delete: a cursor would skip rows.
        {"sqlite_autoincrement": True},
    )

    seq: int | None = Field(
        default=None,
        # BIGINT on PostgreSQL; SQLite only autoincrements a column declared exactly INTEGER.
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    )
    conversation_id: str = Field(foreign_key="conversation.id")
    direction: str  # in | out | event
    message_id: str  # the channel's id for inbound messages; the delivery key for outbound ones
    channel: str
    sender: str  # customer | bot | agent[:name] | system
    text: str = Field(default="", sa_type=Text)
    choices: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    status: str  # received | sent | stored | failed | blocked | handoff | ...
    detail: str = ""
    raw_ref: str | None = None  # where the channel's raw payload is kept, if anywhere (channel_payload)
    #: the vendor's id of a reply it took (a Telegram message id, a WhatsApp wamid): its
    #: delivery statuses name it, and a delivery that has one is never sent again
    channel_message_id: str | None = None
    #: what produced it: for an AI answer, the provider and every attempt (``{"ai": {...}}``)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))
    flow: str = ""
    revision: str = ""
    at: str  # the event's own time, as the runtime gave it (workflow time)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ChannelPayload(SQLModel, table=True):
    """A vendor's payload of one inbound message, kept as it came (for agents, audits, replays).

    Keyed like the message it carried, so a redelivered webhook keeps one copy.
    """

    __tablename__: ClassVar[Any] = "channel_payload"

    channel: str = Field(primary_key=True)
    message_id: str = Field(primary_key=True)
    body: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FlowRevision(SQLModel, table=True):
    """An immutable flow source, stored under its content hash."""

    __tablename__: ClassVar[Any] = "flow_revision"

    revision: str = Field(primary_key=True)
    flow: str = Field(index=True)
    source: str = Field(sa_type=Text)
    #: the texts of the knowledge files the revision's hash covers, by path (engine.flow.knowledge)
    knowledge: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))
    author: str = "files"
    message: str = ""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LiveFlow(SQLModel, table=True):
    """The revision new conversations of a flow start on."""

    __tablename__: ClassVar[Any] = "live_flow"

    flow: str = Field(primary_key=True)
    revision: str = Field(foreign_key="flow_revision.revision")
    file: str | None = None  # the file under flows_dir it was loaded from; None when edited in the UI
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SettingsRevision(SQLModel, table=True):
    """The public part of the settings (engine.flow.public_settings), stored under its content hash."""

    __tablename__: ClassVar[Any] = "settings_revision"

    revision: str = Field(primary_key=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LiveSettings(SQLModel, table=True):
    """The settings revision new conversations start on (one row, ``name = "default"``)."""

    __tablename__: ClassVar[Any] = "live_settings"

    name: str = Field(primary_key=True, default="default")
    revision: str = Field(foreign_key="settings_revision.revision")
    file: str | None = None  # the settings file it was read from
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiToken(SQLModel, table=True):
    """An API token; only the SHA-256 of the token is stored, never the token."""

    __tablename__: ClassVar[Any] = "api_token"
    __table_args__ = (
        UniqueConstraint("name", name="uq_api_token_name"),
        UniqueConstraint("token_hash", name="uq_api_token_token_hash"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str
    token_hash: str
    #: what the token may do (``engine.people.roles``); tokens made before roles existed are admin
    role: str = Field(default="admin", sa_column=Column(String, nullable=False, server_default="admin"))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserAccount(SQLModel, table=True):
    """A person who signs in: agent, supervisor, editor or admin. Only an argon2 hash of the password is kept."""

    __tablename__: ClassVar[Any] = "user_account"
    __table_args__ = (UniqueConstraint("email", name="uq_user_account_email"),)

    id: int | None = Field(default=None, primary_key=True)
    #: lower-cased at the door: one person, one address, whatever the case they type
    email: str
    display_name: str
    #: ``en``, ``zh``, ...: the console's language for this person
    language: str = "en"
    role: str
    password_hash: str
    #: the most conversations held at once; None takes the queue's (then the settings') default
    capacity: int | None = None
    #: online | away | offline, as the agent set it (the socket hub drops it to offline)
    presence: str = Field(default="offline", sa_column=Column(String, nullable=False, server_default="offline"))
    presence_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserSession(SQLModel, table=True):
    """A signed-in browser: the cookie carries a random id, the table its SHA-256 (as for API tokens)."""

    __tablename__: ClassVar[Any] = "user_session"

    id_hash: str = Field(primary_key=True)
    user_id: int = Field(sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), index=True))
    #: sent back in ``X-CSRF-Token`` on unsafe requests (not a secret of the cookie's strength: it
    #: only proves the request was made by a page that could read it)
    csrf_token: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: absolute expiry, whatever the activity
    expires_at: datetime = Field(sa_type=UTCDateTime)
    address: str = ""
    user_agent: str = ""


class AgentQueue(SQLModel, table=True):
    """A queue described by an admin through the API (queues in ``flowdesk.yaml`` are not stored)."""

    __tablename__: ClassVar[Any] = "agent_queue"

    name: str = Field(primary_key=True)
    display_name: str = ""
    description: str = ""
    #: user ids of its members
    members: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    capacity: int | None = None
    #: a ``business_hours`` calendar name; None: always open
    hours: str | None = None
    #: wait | fall_through: what a hand-off does when nobody can take it
    when_nobody: str = "wait"
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ReadMark(SQLModel, table=True):
    """How far a person has read a conversation: its unread count is what came in after."""

    __tablename__: ClassVar[Any] = "read_mark"

    user_id: int = Field(sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True))
    conversation_id: str = Field(foreign_key="conversation.id", primary_key=True)
    seq: int = Field(sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), nullable=False))


class CannedResponse(SQLModel, table=True):
    """A saved reply: shared (``owner_id`` None) or one agent's own; ``shortcut`` is what `/` finds."""

    __tablename__: ClassVar[Any] = "canned_response"
    __table_args__ = (Index("uq_canned_response_owner_shortcut", "owner_id", "shortcut", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=True)
    )
    shortcut: str
    title: str = ""
    #: a template (``{{ contact.name }}``), rendered in the flows' sandbox; never customer text as source
    text: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AuditEntry(SQLModel, table=True):
    """Who did what, when: every agent and admin action (never a password, a token or a message's text)."""

    __tablename__: ClassVar[Any] = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    #: ``user:<id>`` or ``token:<name>``
    actor: str = Field(index=True)
    actor_role: str
    action: str
    conversation_id: str | None = Field(default=None, index=True)
    #: what the action was on, when not a conversation (a user's e-mail, a queue's name)
    target: str = ""
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))
    address: str = ""


class CsatRating(SQLModel, table=True):
    """A customer's 1-5 rating of a conversation, with the agent who last held it."""

    __tablename__: ClassVar[Any] = "csat_rating"

    conversation_id: str = Field(foreign_key="conversation.id", primary_key=True)
    rating: int
    #: the agent it rates (their id as text); None when no agent took part
    agent: str | None = Field(default=None, index=True)
    queue: str | None = None
    comment: str = Field(default="", sa_type=Text)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


#: Every table the store owns, in creation order (parents before children).
TABLES: tuple[type[SQLModel], ...] = (
    Contact,
    Identity,
    Conversation,
    Message,
    ChannelPayload,
    FlowRevision,
    LiveFlow,
    SettingsRevision,
    LiveSettings,
    ApiToken,
    UserAccount,
    UserSession,
    AgentQueue,
    ReadMark,
    CannedResponse,
    AuditEntry,
    CsatRating,
)
