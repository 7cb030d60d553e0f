"""Flowdesk's one error tree.

Every exception class of ``engine`` and ``connectors`` is a :class:`FlowdeskError`,
so a command or a handler that catches it catches every failure Flowdesk means
(``tests/unit/test_errors_tree.py`` checks the drawing below against the classes).
Subclasses live beside the code that raises them, this module at the bottom of
the layers; the module of each one defined elsewhere is in brackets. How the
server answers each with an HTTP status is one table: ``engine/server/problems.py``.

::

    FlowdeskError               base of everything Flowdesk raises on purpose
    ├── ConfigError             flowdesk.yaml / FLOWDESK_* settings are wrong; may carry Diagnostics
    │   └── TokenNameTaken      an API token of that name exists (revoked ones keep theirs) [store.tokens]
    ├── FlowError               a flow file does not compile; carries Diagnostics
    ├── LoadProblem             a YAML document cannot be read; a code and a position [flow.yaml_events]
    ├── _LoadFailed             a file is not text at all; becomes a Diagnostic where raised [flow.load]
    ├── KnowledgeUnusable       a flow's knowledge file cannot be read or attached [flow.knowledge]
    ├── ExpressionError         an expression failed to compile or evaluate
    ├── FlowRuntimeError        a conversation cannot go on (missing flow, runaway)
    ├── PluginError             a connector/processor plugin failed to load
    ├── NoFlowError             no live flow takes this channel's conversations [runtime.client]
    ├── ConversationEnded       the workflow has finished: a new message needs a new conversation [runtime.client]
    ├── ConversationTaken       an agent action lost the claim: another agent holds it (409) [runtime.client]
    ├── AgentActionRefused      the conversation cannot take the agent action now (409) [runtime.client]
    │   └── AgentActionInvalid  the agent action's fields are wrong (422)
    ├── MissingSecret           a flow's secret('NAME') has no value on this worker [runtime.activities]
    ├── DatabaseError           the database cannot be reached or refused an operation [store.db]
    ├── NotTheCommonCase        rolls a fast message write back; the full path takes it [store.fastlog]
    ├── UserEmailTaken          another user has this e-mail address (409) [store.users]
    ├── UserInvalid             a user's field cannot be stored: address, role, language, capacity (422) [store.users]
    ├── PasswordRefused         a new password breaks the rules: too short or too long (422) [people.passwords]
    ├── CannedShortcutTaken     a canned response of that owner has the shortcut (409) [store.canned]
    ├── ProviderError           an AI provider gave no usable answer; the chain acts on its class [ai.types]
    │   ├── Unauthorized        401/403: the key is wrong or lacks permission; not retried
    │   ├── RateLimited         429; ``retry_after`` is the vendor's Retry-After
    │   ├── Unavailable         5xx, a refused or a dropped connection
    │   ├── ProviderTimeout     no answer in time
    │   ├── BadResponse         an answer that is not the vendor's documented format
    │   ├── Rejected            another 4xx: the request itself is wrong; not retried
    │   │   └── _UnknownConversation  Coze's 4002: the conversation id is not valid [connectors.ai.coze]
    │   └── ProviderConfigError the provider cannot be built or called as configured
    ├── _Declined               Coze's 4014: the bot will not answer (a refusal) [connectors.ai.coze]
    └── ChannelError            what a channel raises on purpose [channels.errors]
        ├── SignatureInvalid    a webhook's signature is missing, wrong or too old (401)
        ├── PayloadInvalid      a signed webhook body the channel cannot read (400)
        ├── DeliveryRejected    the channel refused a message for good: not retried
        │   └── ReplyWindowClosed   a free-form reply after the channel's reply window
        ├── ChannelThrottled    the vendor said 429: retried after ``retry_after``
        ├── ChannelUnavailable  the vendor failed (5xx) or did not answer: retried with back-off
        ├── NoFlowLive          no flow is live for the channel: a message cannot start a conversation
        └── BadParameter        a /ws/chat query parameter the web chat cannot use [connectors.channels.webchat.socket]

A :class:`Diagnostic` is a located, coded message about a flow file: it is what
``flowdesk validate`` prints and what the API returns; it is data, not an exception.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How bad a diagnostic is: errors stop a flow from going live, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding about a flow file, located at ``file:line:column``."""

    code: str
    severity: Severity
    message: str
    hint: str
    file: str
    line: int
    column: int
    path: str = "$"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def format(self, *, with_hint: bool = True) -> str:
        """Compiler-style text: ``file:line:col: CODE severity: message``."""
        text = f"{self.file}:{self.line}:{self.column}: {self.code} {self.severity.value}: {self.message}"
        if with_hint and self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data


class FlowdeskError(Exception):
    """Base of every error Flowdesk raises on purpose."""


class ConfigError(FlowdeskError):
    """Settings are missing or invalid; ``diagnostics`` locates the problems when a file had them."""

    def __init__(self, message: str, diagnostics: list[Diagnostic] | None = None) -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics or [])


class FlowError(FlowdeskError):
    """A flow file failed to compile; ``diagnostics`` says where and why."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        errors = [d for d in diagnostics if d.is_error] or diagnostics
        first = errors[0].format(with_hint=False) if errors else "invalid flow"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)


class ExpressionError(FlowdeskError):
    """An expression or template failed to compile or to evaluate."""

    def __init__(self, message: str, *, source: str = "", line: int | None = None) -> None:
        self.source = source
        self.line = line
        super().__init__(message)


class FlowRuntimeError(FlowdeskError):
    """A conversation cannot continue: a missing flow, a runaway loop, a bad event."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class PluginError(FlowdeskError):
    """A plugin (channel, AI provider, processor) could not be loaded."""
