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

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, Text, UniqueConstraint, text
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
    assigned_agent: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Indexed: lists are sorted by it, newest first.
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


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
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


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
)
