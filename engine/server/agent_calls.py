"""One way for the server to send an agent action to a conversation's workflow and read its refusal.

The workflow decides claims (exactly one agent wins); the runtime client turns its
refusals into :class:`ConversationTaken` (someone else holds it), :class:`AgentActionRefused`
(not handed off, bad input) and :class:`ConversationEnded`. Handlers answer them
as 409s naming the reason (the holder, for a lost claim); the dispatcher skips them.
"""

from __future__ import annotations

from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from engine.runtime.client import (
    AgentActionInvalid,
    AgentActionRefused,
    ConversationEnded,
    Conversations,
    ConversationTaken,
)
from engine.runtime.types import ActionAccepted, AgentAction
from engine.server.problems import Problem

__all__ = ["AgentActionRefused", "ConversationTaken", "act", "refusal"]


def refusal(exc: BaseException) -> str:
    """What a workflow update's refusal says, for a person (the validator's message, not Temporal's wrapping)."""
    cause = exc.__cause__ if isinstance(exc, WorkflowUpdateFailedError) and exc.__cause__ else exc
    return str(getattr(cause, "message", "") or cause)


async def act(conversations: Conversations, conversation_id: str, action: AgentAction) -> ActionAccepted:
    """Send ``action``; a refusal is a :class:`Problem` (409 taken, refused, not running; 422 invalid; 503 down)."""
    try:
        return await conversations.agent(conversation_id, action)
    except ConversationTaken as exc:
        raise Problem(409, f"conversation {conversation_id} is held by {exc.holder}", holder=exc.holder) from None
    except AgentActionInvalid as exc:
        raise Problem(422, f"conversation {conversation_id}: {exc}") from None
    except AgentActionRefused as exc:
        raise Problem(409, f"conversation {conversation_id}: {exc}") from None
    except ConversationEnded:
        raise Problem(409, f"conversation {conversation_id} has ended") from None
    except WorkflowUpdateFailedError as exc:
        raise Problem(409, f"conversation {conversation_id}: {refusal(exc)}") from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise Problem(409, f"conversation {conversation_id} is not running") from None
        raise Problem(503, f"the conversation could not be reached right now: {exc.message}") from None
