"""The state of one conversation: plain JSON-compatible data.

It travels through Temporal (workflow input, ``continue_as_new``, queries), so
every field is a str/int/float/bool/None, list or dict, and ``from_dict`` accepts
what ``to_dict`` produced in any earlier version (new fields get defaults).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: How many turns the state keeps for ``transcript()`` and AI context; the store keeps all.
TRANSCRIPT_LIMIT = 60


@dataclass
class Pending:
    """What the conversation waits for at ``step``: message, ai, http, timer or agent."""

    wait: str
    step: str
    call_id: str | None = None
    timer_id: str | None = None


@dataclass
class Frame:
    """A caller suspended by ``call``, resumed when the sub-flow ends."""

    flow: str
    revision: str
    step: str
    vars: dict[str, Any]


@dataclass
class ConversationState:
    """Everything the interpreter knows about one conversation."""

    flow: str
    revision: str
    conversation: dict[str, Any]
    contact: dict[str, Any]
    clock: str
    step: str | None = None
    #: active | handoff | ended
    status: str = "active"
    started: bool = False
    vars: dict[str, Any] = field(default_factory=dict)
    inbox: list[dict[str, Any]] = field(default_factory=list)
    message: dict[str, Any] | None = None
    answer: str | None = None
    intent: str | None = None
    last_ai: dict[str, Any] | None = None
    #: vendor conversation ids by AI provider label (see CallAI.sessions)
    ai_sessions: dict[str, str] = field(default_factory=dict)
    last_http: dict[str, Any] | None = None
    pending: Pending | None = None
    attempts: int = 0
    stack: list[Frame] = field(default_factory=list)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    handoff: dict[str, Any] | None = None
    #: the latest hand-off once it is over: ``{"queue", "agent"}`` (reopen goes back to the
    #: queue, a rating names the agent); None if the conversation was never handed off
    last_handoff: dict[str, Any] | None = None
    seq: int = 0
    steps_since_input: int = 0
    end_status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConversationState:
        known = {f.name for f in fields(cls)}
        values = {k: copy.deepcopy(v) for k, v in data.items() if k in known}
        if isinstance(values.get("pending"), dict):
            values["pending"] = Pending(**values["pending"])
        values["stack"] = [Frame(**f) if isinstance(f, dict) else f for f in values.get("stack", [])]
        return cls(**values)

    def copy(self) -> ConversationState:
        """A copy the interpreter may change; it shares the transcript's turns.

        A turn is never changed once recorded (``record`` appends, the limit cuts
        from the front), and turns are most of a state's size: copying them took
        more than half of each interpreter call in a conversation of a dozen
        exchanges.
        """
        memo: dict[int, Any] = {id(turn): turn for turn in self.transcript}
        return copy.deepcopy(self, memo)

    def next_id(self, prefix: str) -> str:
        """A deterministic id for a timer or call: the same history gives the same ids."""
        self.seq += 1
        return f"{prefix}-{self.seq}"

    def record(self, role: str, text: str, at: str, **extra: Any) -> None:
        """Add a turn to the transcript, keeping the most recent turns."""
        self.transcript.append({"role": role, "text": text, "at": at, **extra})
        if len(self.transcript) > TRANSCRIPT_LIMIT:
            del self.transcript[: len(self.transcript) - TRANSCRIPT_LIMIT]

    @property
    def ended(self) -> bool:
        return self.status == "ended"

    def public_view(self) -> dict[str, Any]:
        """What queries and APIs may show: no inbox bodies, no transcript."""
        return {
            "flow": self.flow,
            "revision": self.revision,
            "step": self.step,
            "status": self.status,
            "waiting_for": self.pending.wait if self.pending else None,
            "vars": copy.deepcopy(self.vars),
            "queued_messages": len(self.inbox),
            "end_status": self.end_status,
            "call_depth": len(self.stack),
        }
