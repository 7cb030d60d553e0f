"""What the interpreter consumes (events) and what it asks for (commands).

Both are small dataclasses of JSON-compatible fields tagged by ``kind``, so they
travel through Temporal and into logs unchanged; ``to_dict``/``event_from_dict``
convert for transports that want plain mappings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar


class CallFailure(StrEnum):
    """Why an AI or HTTP call gave no result: ``AIFailed.reason``, ``HttpFailed.reason``.

    Flows see it as ``ai.error`` / ``http.error`` and in fault codes (``ai_timeout``),
    so the values are part of the flow language.
    """

    #: the call ran out of time; a step with ``on_timeout`` goes there
    TIMEOUT = "timeout"
    #: every provider of an AI chain failed
    FAILED = "failed"
    #: an HTTP call got no response (refused, reset, 5xx after its retries)
    ERROR = "error"


# -- events ------------------------------------------------------------------------


def customer_message(
    message_id: str,
    text: str,
    channel: str,
    at: str,
    *,
    choice: str | None = None,
    attachments: list[dict[str, str]] | None = None,
    parts: list[dict[str, Any]] | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A customer's message as flows see it (``message``): the one shape the workflow and ``flowdesk try`` build.

    ``attachments`` are references (``{"kind": "image", "url"|"media_id", ...}``), ``parts``
    typed contents such as a location that ``text`` stands in for; ``at`` is when the
    customer wrote (reply windows count from it).
    """
    return {
        "id": message_id,
        "text": text,
        "channel": channel,
        "at": at,
        "choice": choice,
        "attachments": list(attachments or ()),
        "parts": list(parts or ()),
        "flags": {},
        "meta": dict(meta or {}),
    }


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A customer's message. ``message``: see :func:`customer_message`."""

    message: dict[str, Any]
    at: str
    #: the live revision of each flow as the sender saw it (see InboundMessage.live); may be empty
    live: dict[str, str] = field(default_factory=dict)
    #: the live settings revision as the sender saw it; may be empty
    settings: str = ""
    kind: ClassVar[str] = "message"


@dataclass(frozen=True, slots=True)
class AIResult:
    """An AI chain answered (for ``classify``, ``text`` is the intent name)."""

    call_id: str
    text: str
    at: str
    confidence: float | None = None
    provider: str | None = None
    #: every provider tried, in order: {provider, outcome, latency_ms, tokens, model, detail}
    attempts: tuple[dict[str, Any], ...] = ()
    #: vendor conversation ids to keep, by provider label (Dify, FastGPT and Coze keep history)
    sessions: dict[str, str] = field(default_factory=dict)
    kind: ClassVar[str] = "ai_result"


@dataclass(frozen=True, slots=True)
class AIFailed:
    """Every provider of the chain failed; ``reason`` is ``timeout`` or another word."""

    call_id: str
    reason: str
    at: str
    detail: str = ""
    attempts: tuple[dict[str, Any], ...] = ()
    kind: ClassVar[str] = "ai_failed"


@dataclass(frozen=True, slots=True)
class HttpResult:
    """An HTTP call returned a response (any status)."""

    call_id: str
    status: int
    body: Any
    at: str
    kind: ClassVar[str] = "http_result"


@dataclass(frozen=True, slots=True)
class HttpFailed:
    """An HTTP call got no response: ``reason`` is ``timeout`` or ``error``."""

    call_id: str
    reason: str
    at: str
    detail: str = ""
    kind: ClassVar[str] = "http_failed"


@dataclass(frozen=True, slots=True)
class TimerFired:
    timer_id: str
    at: str
    kind: ClassVar[str] = "timer"


@dataclass(frozen=True, slots=True)
class AgentAccepted:
    """An agent holds the hand-off now: took it, was assigned it, or got it by a transfer."""

    agent: str
    at: str
    #: their display name, for the customer ("<name> joined the conversation")
    name: str = ""
    #: who decided: the agent themselves (""), "system" (the dispatcher) or a supervisor's id
    by: str = ""
    kind: ClassVar[str] = "agent_accepted"


@dataclass(frozen=True, slots=True)
class AgentMessage:
    agent: str
    text: str
    at: str
    #: the agent's display name: the customer's channel shows it with the reply
    name: str = ""
    kind: ClassVar[str] = "agent_message"


@dataclass(frozen=True, slots=True)
class AgentResolved:
    agent: str
    at: str
    kind: ClassVar[str] = "agent_resolved"


@dataclass(frozen=True, slots=True)
class AgentTransferred:
    """An agent moved the hand-off to another queue; it stays open there."""

    queue: str
    agent: str
    at: str
    reason: str = ""
    #: to this agent instead of a queue (then ``queue`` is the hand-off's own); their display name
    to_agent: str = ""
    to_name: str = ""
    kind: ClassVar[str] = "agent_transferred"


@dataclass(frozen=True, slots=True)
class AgentNoted:
    """A private note for colleagues: logged, never sent to the customer."""

    agent: str
    text: str
    at: str
    name: str = ""
    kind: ClassVar[str] = "agent_note"


@dataclass(frozen=True, slots=True)
class AgentLabelled:
    """The conversation's labels are now ``labels`` (the full set)."""

    agent: str
    labels: tuple[str, ...]
    at: str
    kind: ClassVar[str] = "agent_labels"


@dataclass(frozen=True, slots=True)
class AgentSnoozed:
    """The hand-off is out of the inbox until ``until`` or the customer's reply; neither = back now."""

    agent: str
    at: str
    until: str = ""
    until_reply: bool = False
    kind: ClassVar[str] = "agent_snoozed"


@dataclass(frozen=True, slots=True)
class AgentReopened:
    """A resolved (not ended) conversation goes back to a queue; resolving it resumes the flow."""

    agent: str
    at: str
    #: the queue; "" = the last hand-off's
    queue: str = ""
    kind: ClassVar[str] = "agent_reopened"


@dataclass(frozen=True, slots=True)
class QueuePosition:
    """The dispatcher tells the waiting customer their place in the queue (1 = next)."""

    position: int
    at: str
    kind: ClassVar[str] = "queue_position"


@dataclass(frozen=True, slots=True)
class NobodyAvailable:
    """Nobody can take the hand-off now; with ``fall_through`` it takes its timeout path at once."""

    at: str
    fall_through: bool = False
    kind: ClassVar[str] = "nobody_available"


@dataclass(frozen=True, slots=True)
class CloseRequested:
    """The conversation is closed from outside (API, agent console, idle policy)."""

    status: str
    at: str
    kind: ClassVar[str] = "close"


Event = (
    MessageReceived
    | AIResult
    | AIFailed
    | HttpResult
    | HttpFailed
    | TimerFired
    | AgentAccepted
    | AgentMessage
    | AgentResolved
    | AgentTransferred
    | AgentNoted
    | AgentLabelled
    | AgentSnoozed
    | AgentReopened
    | QueuePosition
    | NobodyAvailable
    | CloseRequested
)

#: The events of people working a hand-off (and the dispatcher speaking for them).
AgentEvent = (
    AgentAccepted
    | AgentMessage
    | AgentResolved
    | AgentTransferred
    | AgentNoted
    | AgentLabelled
    | AgentSnoozed
    | AgentReopened
    | QueuePosition
    | NobodyAvailable
)

EVENT_TYPES: dict[str, type[Any]] = {
    t.kind: t
    for t in (
        MessageReceived,
        AIResult,
        AIFailed,
        HttpResult,
        HttpFailed,
        TimerFired,
        AgentAccepted,
        AgentMessage,
        AgentResolved,
        AgentTransferred,
        AgentNoted,
        AgentLabelled,
        AgentSnoozed,
        AgentReopened,
        QueuePosition,
        NobodyAvailable,
        CloseRequested,
    )
}

# -- commands ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendText:
    """Send one message to the customer. ``sender`` is ``bot`` or ``agent:<id>``."""

    text: str
    step: str | None
    choices: tuple[str, ...] = ()
    sender: str = "bot"
    #: logged with the message: for an AI answer, its provider and attempts
    meta: dict[str, Any] = field(default_factory=dict)
    #: a vendor template to send when free text cannot be (``{"name", "language", "params"}``)
    template: dict[str, Any] = field(default_factory=dict)
    #: images sent with the text (``{"kind": "image", "url": ...}``); channels without images send links
    attachments: tuple[dict[str, str], ...] = ()
    kind: ClassVar[str] = "send"


@dataclass(frozen=True, slots=True)
class CallAI:
    """Run an AI chain of ``flow``@``revision`` (``purpose``: reply or classify)."""

    call_id: str
    step: str
    flow: str
    revision: str
    chain: str
    text: str
    system: str | None
    history: tuple[dict[str, str], ...]
    purpose: str = "reply"
    intents: tuple[tuple[str, tuple[str, ...]], ...] = ()
    timeout_ms: int | None = None
    retries: int | None = None
    #: the vendor conversation ids the conversation holds, by provider label
    sessions: dict[str, str] = field(default_factory=dict)
    #: the earlier turns to send along ({"role": "user"|"assistant", "text"}), chosen by the
    #: interpreter; calls of older interpreters leave it empty and carry the transcript in ``history``
    context: tuple[dict[str, str], ...] = ()
    kind: ClassVar[str] = "call_ai"


@dataclass(frozen=True, slots=True)
class CallHttp:
    """Make an HTTP request. Strings may hold ``${secret:NAME}`` markers to resolve."""

    call_id: str
    step: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()
    json_body: Any = None
    has_json: bool = False
    body: str | None = None
    timeout_ms: int | None = None
    retries: int | None = None
    kind: ClassVar[str] = "call_http"


@dataclass(frozen=True, slots=True)
class StartTimer:
    timer_id: str
    delay_ms: int
    step: str
    kind: ClassVar[str] = "start_timer"


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer_id: str
    kind: ClassVar[str] = "cancel_timer"


@dataclass(frozen=True, slots=True)
class StartHandoff:
    queue: str
    step: str
    note: str | None = None
    priority: int = 0
    kind: ClassVar[str] = "start_handoff"


@dataclass(frozen=True, slots=True)
class CancelHandoff:
    """Take the conversation back from the queue (the hand-off timed out)."""

    queue: str
    step: str
    kind: ClassVar[str] = "cancel_handoff"


@dataclass(frozen=True, slots=True)
class TransferHandoff:
    """The open hand-off now waits on ``queue`` (it was on ``previous``)."""

    queue: str
    previous: str
    step: str
    agent: str
    reason: str = ""
    kind: ClassVar[str] = "transfer_handoff"


@dataclass(frozen=True, slots=True)
class LogEvent:
    """Write a conversation event to the log (direction ``event``): people's actions, ratings.

    ``status`` names the event (``assigned``, ``note``, ``labels``, ``snoozed``, ``csat``...);
    the store derives the conversation's inbox columns from it. Never sent to a channel.
    """

    status: str
    text: str
    sender: str = "bot"
    meta: dict[str, Any] = field(default_factory=dict)
    #: the entry's id in the log, unique in the conversation (``state.next_id``)
    id: str = ""
    kind: ClassVar[str] = "log_event"


@dataclass(frozen=True, slots=True)
class EndConversation:
    status: str
    kind: ClassVar[str] = "end"


@dataclass(frozen=True, slots=True)
class Fault:
    """Something went wrong that operators should see (logged, counted, shown)."""

    code: str
    message: str
    step: str | None
    flow: str
    kind: ClassVar[str] = "fault"


Command = (
    SendText
    | CallAI
    | CallHttp
    | StartTimer
    | CancelTimer
    | StartHandoff
    | CancelHandoff
    | TransferHandoff
    | LogEvent
    | EndConversation
    | Fault
)


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One step the interpreter ran, for ``flowdesk try`` and debugging."""

    flow: str
    step: str
    kind: str
    note: str = ""


@dataclass
class Outcome:
    """Result of one interpreter call."""

    state: Any  # ConversationState; typed loosely to keep this module dependency-free
    commands: list[Command] = field(default_factory=list)
    trace: list[TraceEntry] = field(default_factory=list)


def to_dict(item: Event | Command) -> dict[str, Any]:
    """A tagged plain mapping of an event or command."""
    return {"kind": item.kind, **asdict(item)}


def event_from_dict(data: dict[str, Any]) -> Event:
    """The inverse of :func:`to_dict` for events; unknown kinds raise ``ValueError``."""
    fields = dict(data)
    kind = fields.pop("kind", None)
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown event kind {kind!r}")
    event: Event = EVENT_TYPES[kind](**fields)
    return event
