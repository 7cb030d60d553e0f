"""The dataclasses that cross the Temporal boundary: workflow, update and activity I/O.

Each is one dataclass with JSON-compatible fields, so a field can be added later
with a default without breaking running conversations (Temporal samples' rule).
Nothing here may carry a secret: every field ends up in workflow history.

No ``from __future__ import annotations`` here: the SDK reads these type hints
for every payload it decodes, and real annotations are five times cheaper to
read than strings it has to evaluate.
"""

from dataclasses import dataclass, field
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
    """An agent's action: ``accept``, ``reply`` (with ``text``), ``resolve``, ``transfer`` (to ``queue``)."""

    action: str
    agent: str
    text: str = ""
    queue: str = ""
    #: why the agent transferred the conversation (``transfer`` only); may be empty
    reason: str = ""


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
