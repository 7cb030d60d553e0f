"""What the queues, agents and agent-action endpoints take and answer with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import msgspec
from litestar.params import KwargDefinition

from engine.server.api_models import ApiModel, described
from engine.server.problems import MAX_SAFE_INTEGER

# -- constrained request fields ----------------------------------------------------------
# Litestar writes a dataclass field's KwargDefinition into the schema but does not check it
# on a request body; msgspec checks a Meta but Litestar does not describe it. A constraint
# is said to both (a 400), unless the handler checks it itself (a 422 saying why), so what
# the document says is what a request is held to. Litestar drops a bound of 0 from the
# document, hence the explicit `minimum` in schema_extra.

#: What ``str.isspace`` calls a space (what ``strip`` removes), spelled out: ``\s`` is not
#: the same set in Python (the server) and in ECMA regexes (the schema's dialect).
SPACES = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
#: Somewhere a character that is not a space.
NOT_ONLY_SPACES = rf"[^{SPACES}]"
#: What ``normal_email`` takes for an address: no spaces, something on both sides of an @.
EMAIL_PATTERN = rf"^[^@{SPACES}]+@[^{SPACES}]+$"
#: An address to create an account with: shaped like one (a sign-in only limits the length).
NewEmail = Annotated[
    str,
    msgspec.Meta(min_length=3, max_length=320, pattern=EMAIL_PATTERN),
    KwargDefinition(min_length=3, max_length=320, pattern=EMAIL_PATTERN, description="the account's e-mail address"),
]
#: A password to set: 10 to 1024 characters, not only spaces. Described only: the rules are
#: ``check_new_password``'s, whose 422 says which one a password breaks.
PasswordToSet = Annotated[
    str,
    KwargDefinition(
        min_length=10, max_length=1024, pattern=NOT_ONLY_SPACES, description="10 to 1024 characters, not only spaces"
    ),
]
#: A display name (an empty one is the e-mail address's local part).
DisplayName = Annotated[str, msgspec.Meta(max_length=200), KwargDefinition(max_length=200)]
#: The console's language for a person.
Language = Literal["en", "zh"]
#: The most conversations someone (or each member of a queue) holds at once; null: the default.
#: (The bound is outside the union: an Annotated with a dict in it cannot be in one.)
Capacity = Annotated[
    Annotated[int, msgspec.Meta(ge=0, le=1000)] | None,
    KwargDefinition(ge=0, le=1000, schema_extra={"minimum": 0}),
]
#: A user's id, as a queue's members are listed.
UserRef = Annotated[int, msgspec.Meta(ge=1, le=MAX_SAFE_INTEGER), KwargDefinition(ge=1, le=MAX_SAFE_INTEGER)]

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
    members: Annotated[
        list[UserRef], KwargDefinition(description="user ids (GET /api/agents) of agents, supervisors or admins")
    ] = field(default_factory=list)
    capacity: Capacity = None
    hours: Annotated[
        str | None, KwargDefinition(description="a business_hours calendar of the settings; null: always open")
    ] = None
    when_nobody: Annotated[str, KwargDefinition(schema_extra={"enum": ["wait", "fall_through"]})] = "wait"


#: What a queue may be called (what flows' hand-offs name).
QUEUE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


@dataclass
class NewQueueBody:
    """A new admin-described queue: its name (what flows' hand-offs say); its members are user ids."""

    name: Annotated[str, KwargDefinition(pattern=QUEUE_NAME_PATTERN, min_length=1, max_length=64)]
    display_name: str = ""
    description: str = ""
    members: Annotated[
        list[UserRef], KwargDefinition(description="user ids (GET /api/agents) of agents, supervisors or admins")
    ] = field(default_factory=list)
    capacity: Capacity = None
    hours: Annotated[
        str | None, KwargDefinition(description="a business_hours calendar of the settings; null: always open")
    ] = None
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

    text: Annotated[
        str,
        msgspec.Meta(max_length=20000),
        KwargDefinition(min_length=1, max_length=20000, pattern=NOT_ONLY_SPACES),
    ]


@dataclass
class TransferBody:
    """Where to: an agent (their agent id) or a queue, with an optional note for whoever gets it."""

    agent: str | None = None
    queue: str | None = None
    note: Annotated[Annotated[str, msgspec.Meta(max_length=20000)] | None, KwargDefinition(max_length=20000)] = None


@dataclass
class SnoozeBody:
    """Hide it from the inbox until a time (ISO 8601) or until the customer writes."""

    until: str | None = None
    until_reply: bool = False


@dataclass
class LabelsBody:
    """The conversation's labels: the full set."""

    labels: Annotated[list[str], msgspec.Meta(max_length=50), KwargDefinition(max_items=50)]


@dataclass
class ReadBody:
    """Read up to this seq (the transcript's)."""

    seq: Annotated[
        int,
        msgspec.Meta(ge=0, le=MAX_SAFE_INTEGER),
        KwargDefinition(ge=0, le=MAX_SAFE_INTEGER, schema_extra={"minimum": 0}),
    ]


@dataclass
class AssignBody:
    """The agent (their agent id) who gets it, whoever holds it now."""

    agent: str


@dataclass
class ReopenBody:
    """The queue it goes back to; its last queue if not given."""

    queue: str | None = None
