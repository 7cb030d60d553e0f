"""What the queues, agents and agent-action endpoints take and answer with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from litestar.params import KwargDefinition

from engine.server.api_models import ApiModel, described

# -- queues ------------------------------------------------------------------------------


class QueueView(ApiModel):
    """A queue: who works it, when, and how it stands now."""

    name: str
    display_name: str
    description: str
    source: Annotated[str, described("settings (flowdesk.yaml, read-only here), admin (this API) or open")]
    members: Annotated[list[int], described("user ids of its members (an open queue: every agent)")]
    capacity: Annotated[int | None, described("conversations a member holds at once, unless their own says")]
    hours: Annotated[str | None, described("the business_hours calendar it is open by; null: always")]
    when_nobody: Annotated[str, described("wait or fall_through: what a hand-off does when nobody can take it")]
    waiting: Annotated[int, described("conversations waiting for an agent now")]
    oldest_waiting_since: Annotated[str | None, described("since when the oldest waits (ISO 8601); null if none")]
    members_online: Annotated[int, described("members whose presence is online")]


class QueueList(ApiModel):
    """The queues the caller may see, by name."""

    queues: list[QueueView]


@dataclass
class QueueBody:
    """An admin-described queue: its members are user ids."""

    display_name: str = ""
    description: str = ""
    members: list[int] = field(default_factory=list)
    capacity: Annotated[int | None, KwargDefinition(ge=0, le=1000)] = None
    hours: str | None = None
    when_nobody: Annotated[str, KwargDefinition(schema_extra={"enum": ["wait", "fall_through"]})] = "wait"


#: What a queue may be called (what flows' hand-offs name).
QUEUE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


@dataclass
class NewQueueBody:
    """A new admin-described queue: its name (what flows' hand-offs say); its members are user ids."""

    name: Annotated[str, KwargDefinition(pattern=QUEUE_NAME_PATTERN, min_length=1, max_length=64)]
    display_name: str = ""
    description: str = ""
    members: list[int] = field(default_factory=list)
    capacity: Annotated[int | None, KwargDefinition(ge=0, le=1000)] = None
    hours: str | None = None
    when_nobody: Annotated[str, KwargDefinition(schema_extra={"enum": ["wait", "fall_through"]})] = "wait"


class QueueDeleted(ApiModel):
    """The admin queue is gone (hand-offs to it now wait in an open queue)."""

    name: str
    deleted: bool


# -- agents and presence -----------------------------------------------------------------


class AgentView(ApiModel):
    """A person who answers customers: presence, what they hold now, and their queues."""

    id: Annotated[str, described("their agent id (the user's id as text)")]
    display_name: str
    role: str
    presence: Annotated[str, described("online, away or offline")]
    presence_at: Annotated[str | None, described("since when (ISO 8601); null if never set")]
    load: Annotated[int, described("conversations in hand-off they hold now")]
    capacity: Annotated[int, described("the most they hold at once (their own, else the settings' default)")]
    queues: Annotated[list[str], described("the described queues they are a member of")]


class AgentList(ApiModel):
    """Agents, supervisors and admins, by display name."""

    agents: list[AgentView]


@dataclass
class PresenceBody:
    """A presence to set."""

    presence: Annotated[str, KwargDefinition(schema_extra={"enum": ["online", "away", "offline"]})]


class PresenceView(ApiModel):
    """A person's presence after the change."""

    agent_id: str
    presence: str


# -- agent actions -----------------------------------------------------------------------


class ActionDone(ApiModel):
    """The conversation's workflow took the action (the transcript and the inbox show it shortly)."""

    conversation_id: str
    action: Annotated[str, described("take, reply, note, transfer, resolve, reopen, snooze, labels, assign")]
    accepted: bool


class ReadDone(ApiModel):
    """How far the caller has now read the conversation."""

    conversation_id: str
    seq: Annotated[int, described("their read mark: messages with a larger seq are unread")]


class TypingDone(ApiModel):
    """Whether the customer's channel was told the agent is typing (only channels that show it are)."""

    conversation_id: str
    shown: bool


@dataclass
class TextBody:
    """A message for the customer (reply) or for colleagues (note)."""

    text: Annotated[str, KwargDefinition(min_length=1, max_length=20000)]


@dataclass
class TransferBody:
    """Where to: an agent (their agent id) or a queue, with an optional note for whoever gets it."""

    agent: str | None = None
    queue: str | None = None
    note: Annotated[str | None, KwargDefinition(max_length=20000)] = None


@dataclass
class SnoozeBody:
    """Hide it from the inbox until a time (ISO 8601) or until the customer writes."""

    until: str | None = None
    until_reply: bool = False


@dataclass
class LabelsBody:
    """The conversation's labels: the full set."""

    labels: Annotated[list[str], KwargDefinition(max_items=50)]


@dataclass
class ReadBody:
    """Read up to this seq (the transcript's)."""

    seq: Annotated[int, KwargDefinition(ge=0, le=9007199254740991)]


@dataclass
class AssignBody:
    """The agent (their agent id) who gets it, whoever holds it now."""

    agent: str


@dataclass
class ReopenBody:
    """The queue it goes back to; its last queue if not given."""

    queue: str | None = None
