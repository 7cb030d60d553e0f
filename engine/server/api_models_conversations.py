"""What ``/api/conversations`` answers with: conversations, transcripts, live state, closing."""

from __future__ import annotations

from typing import Annotated, Any

from engine.server.api_models import ApiModel, described


class ConversationView(ApiModel):
    """One conversation: where it runs, on which revision, and how it ended if it did."""

    id: str
    status: Annotated[str, described("open, handoff or ended")]
    end_status: Annotated[str | None, described("how it ended (resolved, abandoned, ...); null while it runs")]
    channel: str
    contact_id: str
    flow: str
    revision: Annotated[str, described("the flow revision it runs on")]
    outdated: Annotated[bool, described("still running, on a revision that is no longer its flow's live one")]
    assigned_agent: Annotated[str | None, described("the agent holding it (their agent id); null if nobody")]
    created_at: Annotated[str, described("ISO 8601")]
    updated_at: Annotated[str, described("last activity (ISO 8601)")]
    ended_at: Annotated[str | None, described("ISO 8601; null while it runs")]
    queue: Annotated[str | None, described("the queue of its current (or latest) hand-off; null if never handed off")]
    waiting_since: Annotated[
        str | None, described("since when it waits for an agent (ISO 8601); null if held or not waiting")
    ]
    labels: list[str]
    snoozed_until: Annotated[str | None, described("hidden from the inbox until then (ISO 8601)")]
    snoozed_until_reply: Annotated[bool, described("hidden from the inbox until the customer writes")]
    last_message: Annotated[str, described("the latest customer, bot or agent message (not notes or events)")]
    last_message_at: Annotated[str | None, described("when it was sent (ISO 8601)")]
    unread: Annotated[int, described("customer messages after the caller's read mark (0 for API tokens)")] = 0


class ConversationList(ApiModel):
    """A page of conversations, newest activity first."""

    conversations: list[ConversationView]
    limit: int
    offset: int


class MessageView(ApiModel):
    """One line of a transcript: a message in or out, or an event (hand-off, end)."""

    seq: Annotated[int, described("grows with every line: pass it as `after` to read only newer ones")]
    id: Annotated[str, described("the channel's id of an inbound message; the delivery key of an outbound one")]
    direction: Annotated[str, described("in, out or event")]
    sender: Annotated[str, described("customer, bot, agent[:name] or system")]
    channel: str
    text: str
    choices: Annotated[list[str], described("the quick replies offered with it")]
    status: Annotated[str, described("received, sent, stored, failed, blocked, handoff, ...")]
    detail: Annotated[str, described("why a delivery failed or was blocked; empty otherwise")]
    meta: Annotated[dict[str, Any], described("what produced it: for an AI answer, the provider and every attempt")]
    flow: str
    revision: str
    at: Annotated[str, described("when it happened, in the workflow's time (ISO 8601)")]


class Transcript(ApiModel):
    """A conversation's messages in order of `seq`."""

    conversation_id: str
    messages: list[MessageView]


class FlowPosition(ApiModel):
    """Where a conversation is in its flow, as its workflow sees it now."""

    flow: str
    revision: str
    step: Annotated[str | None, described("the step it is at; null before the first")]
    status: Annotated[str, described("active, handoff or ended")]
    waiting_for: Annotated[str | None, described("what the step waits for (a message, a timer, ...); null if nothing")]
    vars: Annotated[dict[str, Any], described("the flow's variables")]
    queued_messages: Annotated[int, described("messages received and not yet handled")]
    end_status: Annotated[str | None, described("how it ended; null while it runs")]
    call_depth: Annotated[int, described("how many `call`s deep it is in other flows")]


class ConversationState(ApiModel):
    """Live state from a conversation's workflow: step, status, revision, variables, timers."""

    conversation_id: str
    state: FlowPosition
    timers: Annotated[dict[str, str], described("when each pending timer fires (ISO 8601), by timer id")]
    in_flight: Annotated[int, described("calls (HTTP, AI, deliveries) running now")]
    idle: Annotated[
        bool,
        described(
            "nothing queued, being handled, running or waiting for delivery: the conversation waits "
            "for the world (a customer, an agent, a timer)"
        ),
    ]


class ClosingConversation(ApiModel):
    """A close was accepted: the conversation ends shortly (its flow's goodbye is not run)."""

    conversation_id: str
    closing: bool
