"""What an AI provider receives and returns, and the ways it can fail.

A provider (``connectors/ai/<name>.py`` or a plugin) implements :class:`AIProvider`:
one coroutine from :class:`AIRequest` to :class:`AIReply`. It raises a
:class:`ProviderError` subclass for anything that is not an answer; the fallback
chain (``engine.ai.chain``) decides what happens next from the error's class. Error
messages must name the failure (status, vendor error code), never echo a request:
requests carry credentials.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from engine.errors import FlowdeskError

# The turns are chosen by the conversation's interpreter (pure flow code); providers see them here.
from engine.flow.ai_context import Turn

__all__ = [
    "AIProvider",
    "AIReply",
    "AIRequest",
    "BadResponse",
    "ProviderConfigError",
    "ProviderError",
    "ProviderTimeout",
    "RateLimited",
    "Rejected",
    "Turn",
    "Unauthorized",
    "Unavailable",
    "Usage",
]


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class AIRequest:
    """One question to a provider.

    ``context`` is the selected earlier turns, oldest first, without the current
    ``message``. ``params`` are per-call generation parameters (``model``,
    ``temperature``, ``max_tokens``) that override the provider's configuration.
    ``vendor_conversation_id`` is what the vendor returned last time in this
    conversation (Dify, FastGPT and Coze keep their own conversation state).
    ``user`` is a stable opaque id of the customer for vendors that want one.
    """

    message: str
    system: str | None = None
    context: tuple[Turn, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    conversation_id: str = ""
    vendor_conversation_id: str | None = None
    user: str = ""

    @property
    def end_user(self) -> str:
        """``user``, else an id derived from the conversation: stable, and naming no one."""
        return self.user or conversation_token(self.conversation_id)


def conversation_token(conversation_id: str) -> str:
    """``flowdesk-`` and 32 hex digits of the conversation id's SHA-256: what vendors see of it."""
    return "flowdesk-" + hashlib.sha256(conversation_id.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class AIReply:
    """An answer. ``confidence`` (0..1) only when the vendor or provider can tell.

    ``refused`` marks an answer the vendor itself flags as a refusal (OpenAI's
    ``refusal``, Anthropic's ``stop_reason: refusal``); the chain falls through
    on it, as on an empty ``text``.
    """

    text: str
    confidence: float | None = None
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    latency_ms: float = 0.0
    vendor_conversation_id: str | None = None
    refused: bool = False


@runtime_checkable
class AIProvider(Protocol):
    """An AI vendor behind one call."""

    async def reply(self, request: AIRequest) -> AIReply: ...


class ProviderError(FlowdeskError):
    """A provider gave no usable answer. ``outcome`` is the metric label of the failure.

    ``retryable``: whether trying the same provider again may help (the chain
    retries it up to the provider's ``retries``). ``status`` and ``code`` are the
    HTTP status and the vendor's error code, when the failure was an HTTP answer.
    """

    outcome = "error"
    retryable = True

    def __init__(
        self, message: str, *, retry_after: float | None = None, status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status
        self.code = code


class Unauthorized(ProviderError):
    """401/403: the key is wrong or lacks permission. Retrying cannot help."""

    outcome = "unauthorized"
    retryable = False


class RateLimited(ProviderError):
    """429: ``retry_after`` (seconds) is the vendor's ``Retry-After`` when it sent one."""

    outcome = "rate_limited"


class Unavailable(ProviderError):
    """5xx, a refused connection or a dropped one: the vendor is down or overloaded."""

    outcome = "unavailable"


class ProviderTimeout(ProviderError):
    outcome = "timeout"


class BadResponse(ProviderError):
    """The vendor answered something that is not its documented format."""

    outcome = "bad_response"


class Rejected(ProviderError):
    """Another 4xx: the request itself is wrong (unknown model, bad parameter)."""

    outcome = "rejected"
    retryable = False


class ProviderConfigError(ProviderError):
    """The provider cannot be built or called as configured (missing key, bad URL, unknown name)."""

    outcome = "misconfigured"
    retryable = False
