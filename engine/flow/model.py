"""The compiled flow: frozen, typed, and identified by the hash of its content.

A :class:`CompiledFlow` is built only from a document that validated without
errors (see :mod:`engine.flow.compile`), so its fields can be trusted: every step
reference resolves and every duration is already milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

JSON = Any  # a JSON-compatible value; never mutated once compiled


class StepKind(StrEnum):
    """What a step does; a step has exactly one kind."""

    SAY = "say"
    SET = "set"
    ASK = "ask"
    WAIT = "wait"
    SWITCH = "switch"
    AI = "ai"
    CLASSIFY = "classify"
    HTTP = "http"
    HANDOFF = "handoff"
    CSAT = "csat"
    CALL = "call"
    GOTO_FLOW = "goto_flow"
    END = "end"


#: Keys that make a step a step of that kind (``say`` and ``set`` double as common fields).
ACTION_KINDS: tuple[StepKind, ...] = (
    StepKind.ASK,
    StepKind.WAIT,
    StepKind.SWITCH,
    StepKind.AI,
    StepKind.CLASSIFY,
    StepKind.HTTP,
    StepKind.HANDOFF,
    StepKind.CSAT,
    StepKind.CALL,
    StepKind.GOTO_FLOW,
    StepKind.END,
)

#: Kinds that stop and wait for the customer or an agent; a loop must contain one.
BLOCKING_KINDS = frozenset({StepKind.ASK, StepKind.WAIT, StepKind.HANDOFF, StepKind.CSAT})


@dataclass(frozen=True, slots=True)
class SetOp:
    """One assignment of a step's ``set:``: an expression, or a literal value."""

    var: str
    expression: str | None
    literal: JSON = None


@dataclass(frozen=True, slots=True)
class NoAction:
    """``say``-only and ``set``-only steps carry no action of their own."""


@dataclass(frozen=True, slots=True)
class AskAction:
    prompt: str
    expect: str | None
    retry_prompt: str | None
    max_attempts: int
    on_fail: str | None
    choices: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WaitAction:
    """``wait: message`` (``for_message``) or a pause of ``duration_ms``."""

    for_message: bool
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class SwitchCase:
    condition: str
    goto: str


@dataclass(frozen=True, slots=True)
class SwitchAction:
    cases: tuple[SwitchCase, ...]
    default: str | None


@dataclass(frozen=True, slots=True)
class AIAction:
    chain: str
    send: bool


@dataclass(frozen=True, slots=True)
class ClassifyAction:
    intents: tuple[tuple[str, tuple[str, ...]], ...]
    chain: str | None
    min_confidence: float
    text: str | None
    routes: tuple[tuple[str, str], ...]
    other: str | None


@dataclass(frozen=True, slots=True)
class HttpAction:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    query: tuple[tuple[str, str], ...]
    json_body: JSON
    body: str | None
    has_json: bool


@dataclass(frozen=True, slots=True)
class HandoffAction:
    queue: str
    timeout_ms: int | None
    note: str | None
    priority: int


@dataclass(frozen=True, slots=True)
class CsatAction:
    """Ask for a 1-5 rating; None texts are the settings' messages (``csat_question``, ``csat_thanks``)."""

    question: str | None = None
    thanks: str | None = None


#: The choices of a ``csat`` step's question: buttons where the channel has them.
CSAT_CHOICES: tuple[str, ...] = ("1", "2", "3", "4", "5")


@dataclass(frozen=True, slots=True)
class FlowJumpAction:
    """``call`` (returns) and ``goto_flow`` (does not) share this shape."""

    flow: str
    with_vars: tuple[SetOp, ...]


@dataclass(frozen=True, slots=True)
class EndAction:
    status: str


Action = (
    NoAction
    | AskAction
    | WaitAction
    | SwitchAction
    | AIAction
    | ClassifyAction
    | HttpAction
    | HandoffAction
    | CsatAction
    | FlowJumpAction
    | EndAction
)


@dataclass(frozen=True, slots=True)
class VendorTemplate:
    """``say: {template: ...}``: a vendor-approved message for when free text cannot be sent."""

    name: str
    #: the template's language; "" = the contact's locale, else ``en``
    language: str = ""
    #: templates rendered into the body's {{1}}, {{2}} ...
    params: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """One compiled step. ``next`` already accounts for falling through to the next step."""

    name: str
    kind: StepKind
    action: Action
    say: str | None = None
    #: a vendor template the say may be sent as (``say: {template: ..., text: ...}``)
    say_template: VendorTemplate | None = None
    #: the URL (a template) of an image sent with the say (``say: {text: ..., image: ...}``)
    say_image: str | None = None
    set: tuple[SetOp, ...] = ()
    next: str | None = None
    on_error: str | None = None
    on_timeout: str | None = None
    timeout_ms: int | None = None
    retries: int | None = None
    save_as: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderRef:
    """One provider in an AI chain; ``options`` holds everything vendor-specific."""

    use: str
    profile: str | None
    model: str | None
    timeout_ms: int | None
    retries: int
    options: JSON


@dataclass(frozen=True, slots=True)
class ContextSpec:
    strategy: str = "recent"
    max_turns: int = 12
    max_tokens: int = 2000


@dataclass(frozen=True, slots=True)
class Chain:
    name: str
    system: str | None
    providers: tuple[ProviderRef, ...]
    min_confidence: float | None
    timeout_ms: int | None
    context: ContextSpec


@dataclass(frozen=True, slots=True)
class Stage:
    """One pipeline stage: a processor name and its configuration."""

    processor: str
    config: JSON
    on_error: str = "pass"


@dataclass(frozen=True, slots=True)
class FlowTest:
    """A test from ``tests:``; ``data`` is its validated mapping (see engine.flowtest.runner)."""

    name: str
    data: JSON


@dataclass(frozen=True, slots=True)
class CompiledFlow:
    """A flow ready to run. ``revision`` is the hash of its canonical content."""

    name: str
    revision: str
    steps: Mapping[str, Step]
    start: str
    description: str | None = None
    channels: tuple[str, ...] = ("*",)
    priority: int = 0
    when: str | None = None
    vars: Mapping[str, JSON] = field(default_factory=dict)
    inbound: tuple[Stage, ...] = ()
    outbound: tuple[Stage, ...] = ()
    chains: Mapping[str, Chain] = field(default_factory=dict)
    tests: tuple[FlowTest, ...] = ()
    file: str = "<flow>"
    source: str = ""
    #: knowledge file texts by the path the flow writes (engine.flow.knowledge)
    knowledge: Mapping[str, str] = field(default_factory=dict)

    @property
    def short_revision(self) -> str:
        return self.revision[:12]

    def serves(self, channel: str) -> bool:
        """Whether this flow may take conversations from ``channel`` (an address: ``telegram``, ``whatsapp:sales``).

        A kind in ``channels`` serves every account of it; ``kind:account`` just that one.
        """
        if "*" in self.channels or channel in self.channels:
            return True
        kind, _, account = channel.partition(":")
        return bool(account) and kind in self.channels
