"""The dataclasses that cross the Temporal boundary: workflow, update and activity I/O.

Each is one dataclass with JSON-compatible fields, so a field can be added later
with a default without breaking running conversations (Temporal samples' rule).
Nothing here may carry a secret: every field ends up in workflow history.

No ``from __future__ import annotations`` here: the SDK reads these type hints
for every payload it decodes, and real annotations are five times cheaper to
read than strings it has to evaluate.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.message_log import RecordInput

#: The default task queue of workflows and activities.
TASK_QUEUE = "flowdesk"
#: An inbound message's meta flag: this channel is served by the conversation's own
#: worker and answers at once, so replies may go out inside the workflow task.
IN_TASK_META = "reply_in_task"
#: An inbound message's meta: the customer's id on its channel, where replies go.
SENDER_META = "sender"


def workflow_id(conversation_id: str) -> str:
    """The workflow id of a conversation: one entity workflow per conversation."""
    return f"conv-{conversation_id}"


@dataclass
class ConversationInput:
    """Starts (or continues, after continue-as-new) a conversation workflow."""

    conversation_id: str
    flow: str
    revision: str
    channel: str
    contact: dict[str, Any] = field(default_factory=dict)
    #: ConversationState.to_dict() when continuing as new; None for a new conversation
    state: dict[str, Any] | None = None
    #: channel message ids already accepted (redeliveries after continue-as-new)
    seen: list[str] = field(default_factory=list)
    #: timer id -> ISO due time, recreated after continue-as-new
    timers: dict[str, str] = field(default_factory=dict)
    #: events accepted but not yet interpreted when the run continued as new
    backlog: list[dict[str, Any]] = field(default_factory=list)
    #: outbound messages so far (delivery keys stay unique across runs)
    sent: int = 0
    #: live revisions known to the conversation (flow id -> revision)
    live: dict[str, str] = field(default_factory=dict)
    #: interpreted events after which the run continues as new (history stays small)
    max_events_per_run: int = 2000
    #: how long a reply waits for the node holding the customer's socket to pick it up
    node_pickup_seconds: float = 30.0
    #: milliseconds added to workflow time wherever an event is stamped (flow tests run on
    #: their own calendar, Monday 2026-01-05 10:00 UTC); timer delays are not shifted.
    #: Workflow input, so a replay stamps the same times.
    clock_offset_ms: int = 0
    #: variables set before the conversation starts (a flow test's `vars:`)
    vars: dict[str, Any] = field(default_factory=dict)
    #: the settings revision (engine.flow.public_settings) the conversation runs on; "" = the
    #: defaults (conversations started before settings revisions existed)
    settings: str = ""
    #: the agent holding the conversation's hand-off when the run continued as new ("" = nobody)
    holder: str = ""


@dataclass
class InboundMessage:
    """A customer's message as the channel delivered it (the update argument)."""

    id: str
    text: str
    channel: str
    at: str | None = None
    contact: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    #: live revisions of the message's flow and the flows it can jump to, when it was sent
    #: (filled in by Conversations.send): with them, a message that needs no inbound
    #: pipeline skips the prepare round trip
    live: dict[str, str] = field(default_factory=dict)
    #: the live settings revision when it was sent (filled in by Conversations.send)
    settings: str = ""
    #: what the customer tapped (a button press); the text is its label
    choice: str | None = None
    #: images and files as references (``{"kind", "url"|"media_id", "name", "mime_type"}``)
    attachments: list[dict[str, str]] = field(default_factory=list)
    #: typed parts the text is the fallback of (``{"type": "location", ...}``)
    parts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Accepted:
    """What sending a message returns: it is durably queued (or was already)."""

    conversation_id: str
    message_id: str
    duplicate: bool = False


@dataclass
class AgentAction:
    """An agent's (or the dispatcher's) action on a handed-off conversation: the ``agent`` update.

    ``action`` is one of :data:`AGENT_ACTION_NAMES`; which fields it reads:

    - ``accept``: the agent takes it (refused if someone else holds it).
    - ``assign``: ``agent`` gets it, decided by ``by`` ("system" for the dispatcher, else the
      supervisor's id); refused if someone holds it unless ``force``.
    - ``reply``: ``text`` to the customer; claims it if nobody holds it, refused if another does.
    - ``note``: ``text`` for colleagues only, never sent to the customer; allowed whenever the
      conversation has not ended.
    - ``transfer``: to ``queue`` (the claim is released, it waits there) or to ``to_agent``
      (``to_name`` their display name): they hold it. ``reason`` is optional.
    - ``resolve``: the flow goes on at the hand-off's ``next``.
    - ``reopen``: a resolved, not-ended conversation is handed off again to its last queue
      (or ``queue``); resolving it again resumes the flow where it was waiting.
    - ``snooze``: ``until`` (ISO time) or ``until_reply``; neither = unsnooze.
    - ``labels``: ``labels`` is the full set.
    - ``position``: the customer is told they are number ``position`` in the queue.
    - ``unavailable``: the customer is told nobody is available; with ``fall_through`` the
      hand-off takes its ``on_timeout`` path at once.

    ``agent`` is ``Principal.agent_id`` (a user id as text or ``token:<name>``); ``name`` is
    the display name the customer sees. ``position``/``unavailable`` need no agent.
    """

    action: str
    agent: str = ""
    text: str = ""
    queue: str = ""
    #: why the agent transferred the conversation (``transfer`` only); may be empty
    reason: str = ""
    #: the agent's display name (what the customer sees: "<name> joined the conversation")
    name: str = ""
    #: who decided an ``assign``: "system" (the dispatcher) or a supervisor's agent id
    by: str = ""
    #: ``assign`` over whoever holds it (a supervisor's reassign)
    force: bool = False
    #: ``transfer`` to this agent (their agent id) instead of a queue
    to_agent: str = ""
    #: the display name of ``to_agent``
    to_name: str = ""
    #: ``snooze`` until this ISO 8601 time
    until: str = ""
    #: ``snooze`` until the customer writes
    until_reply: bool = False
    #: ``labels``: the conversation's labels, the full set
    labels: list[str] = field(default_factory=list)
    #: ``position``: the customer's place in the queue (1 = next)
    position: int = 0
    #: ``unavailable``: take the hand-off's on_timeout path at once
    fall_through: bool = False


#: Every action the ``agent`` update takes.
AGENT_ACTION_NAMES = frozenset(
    {
        "accept",
        "assign",
        "reply",
        "note",
        "transfer",
        "resolve",
        "reopen",
        "snooze",
        "labels",
        "position",
        "unavailable",
    }
)


#: Bounds of an agent action's fields (they end up in workflow history).
AGENT_TEXT_CHARS = 20_000
MAX_LABELS = 50
LABEL_CHARS = 64


def agent_action_problem(action: AgentAction) -> str:
    """What is wrong with an action's fields ("" = nothing): the same answer in the client and the workflow."""
    kind = action.action
    if kind not in AGENT_ACTION_NAMES:
        return f"unknown agent action {kind!r}; use one of {sorted(AGENT_ACTION_NAMES)}"
    if kind not in ("position", "unavailable") and not action.agent:
        return "the agent is missing"
    if kind in ("reply", "note"):
        if not action.text.strip():
            return f"a {kind} needs text"
        if len(action.text) > AGENT_TEXT_CHARS:
            return f"a {kind} is longer than {AGENT_TEXT_CHARS} characters"
    if kind == "transfer" and not action.queue and not action.to_agent:
        return "a transfer needs a queue or an agent"
    if kind == "assign" and not action.agent:
        return "an assignment needs the agent"
    if kind == "snooze" and action.until:
        try:
            until = datetime.fromisoformat(action.until)
        except ValueError:
            return f"snooze until {action.until!r}: not an ISO 8601 time"
        if until.tzinfo is None:
            return f"snooze until {action.until!r}: the time needs its UTC offset"
    if kind == "labels":
        if len(action.labels) > MAX_LABELS:
            return f"at most {MAX_LABELS} labels"
        for label in action.labels:
            if not isinstance(label, str) or not label.strip() or len(label) > LABEL_CHARS:
                return f"a label is a text of 1 to {LABEL_CHARS} characters (got {label!r})"
    if kind == "position" and action.position < 1:
        return "a queue position is 1 or more"
    return ""


@dataclass
class CloseRequest:
    status: str = "closed"
    reason: str = ""


@dataclass
class ActionAccepted:
    """What the ``agent`` and ``close`` updates return: the action is queued for the conversation.

    JSON ``{"accepted": true}``, the shape these updates have always returned.
    """

    #: always true: an action that cannot be taken is rejected by the update's validator
    accepted: bool = True


@dataclass
class PrepareInput:
    """Local activity input: run the inbound pipeline and look up live revisions."""

    conversation_id: str
    flow: str
    revision: str
    message: dict[str, Any]
    #: flow ids whose live revision the workflow needs (its own and call/goto targets)
    flows: list[str] = field(default_factory=list)
    #: the message's log entry, written first (one local activity instead of two steps)
    record: RecordInput | None = None
    #: whose messages these are, for per-sender processors (rate_limit): the contact, else ""
    key: str = ""


@dataclass
class Prepared:
    message: dict[str, Any]
    #: set when a processor blocked the message; it is not interpreted
    blocked: str | None = None
    reply: str | None = None
    #: flow id -> live revision
    live: dict[str, str] = field(default_factory=dict)
    #: the live settings revision
    settings: str = ""


@dataclass
class DeliverInput:
    """One outbound message; ``key`` makes a retried delivery idempotent."""

    conversation_id: str
    channel: str
    key: str
    text: str
    choices: list[str] = field(default_factory=list)
    sender: str = "bot"
    contact: dict[str, Any] = field(default_factory=dict)
    #: for the log entry the activity writes once the channel took the message
    flow: str = ""
    revision: str = ""
    #: workflow time the reply was queued (the log uses workflow time throughout)
    at: str = ""
    #: task queue of the node holding the customer's socket (web chat); "" = the worker's own
    route: str = ""
    #: logged with the reply (see RecordInput.meta)
    meta: dict[str, Any] = field(default_factory=dict)
    #: the channel is served by the conversation's own worker and answers at once (web chat on
    #: a single node): the reply may go out inside the workflow task that made it
    in_task: bool = False
    #: when the customer last wrote (ISO 8601): a channel's reply window counts from it
    customer_at: str = ""
    #: the customer's id on the channel (chat id, phone number): the sender of their latest message
    recipient: str = ""
    #: images sent with the text (``{"kind": "image", "url": ...}``)
    attachments: list[dict[str, str]] = field(default_factory=list)
    #: the vendor template the flow named (``say: {template: ...}``): sent when free text cannot be
    template: dict[str, Any] = field(default_factory=dict)


@dataclass
class Delivered:
    key: str
    status: str  # sent | duplicate | stored
    channel_message_id: str | None = None
    #: the channel wrote the message log entry itself (web chat: its seq is the client's cursor)
    logged: bool = False


@dataclass
class AIInput:
    """An AI chain call: everything but credentials, which the activity looks up."""

    call: dict[str, Any]
    conversation_id: str = ""


@dataclass
class HttpInput:
    """An HTTP call; strings may contain ``${secret:NAME}`` markers the activity resolves."""

    call: dict[str, Any]
    conversation_id: str = ""


@dataclass
class StateView:
    """What the state query returns: no secrets, no message bodies in the queue."""

    conversation_id: str
    state: dict[str, Any]
    timers: dict[str, str] = field(default_factory=dict)
    in_flight: int = 0
    #: nothing queued, being handled, running or waiting for delivery: the conversation
    #: waits for the world (a customer, an agent, a timer)
    idle: bool = False
