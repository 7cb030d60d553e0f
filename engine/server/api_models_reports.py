"""What the canned-response, audit-log and report endpoints answer with."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from engine.server.api_models import ApiModel, described


class CannedView(ApiModel):
    """A canned response: shared by the team (`shared`) or one agent's own."""

    id: int
    shortcut: Annotated[str, described("what the `/` picker finds it by")]
    title: str
    text: Annotated[str, described("the template: `{{ contact.name }}`, `{{ agent.name }}`, `{{ vars.x }}` ...")]
    shared: Annotated[bool, described("true for the team's responses (edited by supervisors and admins)")]
    owner_id: Annotated[int | None, described("the user it belongs to; null when shared")]
    created_at: Annotated[str, described("ISO 8601")]
    updated_at: Annotated[str, described("ISO 8601")]


class CannedList(ApiModel):
    """The shared canned responses and the caller's own that match the query; shortcut prefix matches first."""

    canned: list[CannedView]


class CannedDeleted(ApiModel):
    """A canned response was deleted."""

    id: int
    deleted: bool


class RenderedCanned(ApiModel):
    """A canned response's text rendered for one conversation, ready to send or edit."""

    id: int
    conversation_id: str
    text: str


class AuditView(ApiModel):
    """One audit entry: who did what, when, to which conversation (never a message's text or a secret)."""

    id: int
    at: Annotated[str, described("ISO 8601")]
    actor: Annotated[str, described("`user:<id>` or `token:<name>`")]
    actor_role: str
    action: Annotated[str, described("`conversation.take`, `canned.create`, `user.create`, ...")]
    conversation_id: str | None
    target: Annotated[str, described("what the action was on when not a conversation (an e-mail, a queue)")]
    detail: dict[str, Any]
    address: Annotated[str, described("the client's address")]


class AuditList(ApiModel):
    """Audit entries, newest first."""

    entries: list[AuditView]
    next_before_id: Annotated[
        int | None, described("pass as `before_id` for the next (older) page; null on the last page")
    ]


class AgentReportRow(ApiModel):
    """One agent's figures over the range (times in seconds; null where nothing was measured)."""

    agent: Annotated[str, described("the agent's id: a user's id, or `token:<name>`")]
    display_name: str
    handled: Annotated[int, described("conversations the agent got (assigned or taken) in the range")]
    first_reply_p50_s: Annotated[float | None, described("from getting a conversation to the first reply, median")]
    first_reply_p90_s: float | None
    first_replies: Annotated[int, described("first replies measured")]
    resolution_p50_s: Annotated[float | None, described("from getting a conversation to resolving it, median")]
    resolution_p90_s: float | None
    resolved: Annotated[int, described("conversations the agent resolved")]
    csat_average: Annotated[float | None, described("mean rating (1-5) of the agent's rated conversations")]
    csat_count: int


class QueueReportRow(ApiModel):
    """One queue's figures over the range (times in seconds; null where nothing was measured)."""

    queue: str
    handoffs: Annotated[int, described("conversations that entered the queue (transfers to it included)")]
    assignment_wait_p50_s: Annotated[float | None, described("from entering the queue to an agent getting it, median")]
    assignment_wait_p90_s: float | None
    assigned: Annotated[int, described("conversations an agent got from the queue")]
    abandoned: Annotated[int, described("conversations that ended while waiting in the queue")]
    csat_average: float | None
    csat_count: int


class AgentReport(ApiModel):
    """Per-agent figures of `[from, to)`."""

    from_: Annotated[str, described("ISO 8601, included")] = msgspec.field(name="from")
    to: Annotated[str, described("ISO 8601, excluded")] = ""
    agents: list[AgentReportRow] = msgspec.field(default_factory=list)


class QueueReport(ApiModel):
    """Per-queue figures of `[from, to)`."""

    from_: Annotated[str, described("ISO 8601, included")] = msgspec.field(name="from")
    to: Annotated[str, described("ISO 8601, excluded")] = ""
    queues: list[QueueReportRow] = msgspec.field(default_factory=list)
