"""What plays a flow test's turns: the in-process simulator, or (above this package) the runtime.

The turn logic of :mod:`engine.flowtest.runner` matches and reports; a
:class:`TurnDriver` makes things happen and says what the bot sent and where the
conversation is. :class:`SimulatorDriver` runs the pure interpreter on a fake
clock (``flowdesk test``); ``engine.livetest`` drives a real workflow on a
time-skipping Temporal server (``flowdesk test --live``). Both answer AI and
HTTP steps from the same mocks (:mod:`engine.flowtest.offline`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.flow.context import InterpreterContext
from engine.flow.events import Fault, TraceEntry
from engine.flow.model import CompiledFlow
from engine.flow.state import ConversationState
from engine.flowtest.offline import OfflineAI, ScriptedHttp
from engine.flowtest.simulate import Simulator, flow_dir
from engine.pipeline.runner import Pipelines

#: The agent every test's `agent:` turns act as.
TEST_AGENT = "agent-1"


@dataclass(frozen=True)
class ConversationLook:
    """Where a conversation is, as the `step`/`vars`/`end` turns and failure messages read it."""

    flow: str
    step: str | None = None
    status: str = "active"
    #: what it waits for ("message", "agent", a result...), None when it does not wait
    waiting_for: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    started: bool = True
    ended: bool = False
    end_status: str | None = None

    @classmethod
    def of_state(cls, state: ConversationState) -> ConversationLook:
        return cls(
            flow=state.flow,
            step=state.step,
            status=state.status,
            waiting_for=state.pending.wait if state.pending else None,
            vars=state.vars,
            started=state.started,
            ended=state.ended,
            end_status=state.end_status,
        )


class TurnDriver(Protocol):
    """Plays one test conversation; every method returns once the conversation has settled."""

    def user(self, text: str) -> None:
        """The customer sends ``text``."""

    def elapse(self, milliseconds: int) -> None:
        """Time passes; timers that fall due fire, in order."""

    def agent(self, action: str, text: str = "") -> None:
        """The agent does ``accept``, ``say`` (``text``) or ``resolve``."""

    def bot_texts(self) -> list[str]:
        """Every message the bot sent so far, in order (an agent's are the test's own)."""

    def look(self) -> ConversationLook:
        """Where the conversation is now."""

    def trace(self) -> Sequence[TraceEntry]:
        """Steps run so far (empty where the driver cannot see them)."""

    def faults(self) -> Sequence[Fault]:
        """Faults so far (empty where the driver cannot see them)."""

    def notes(self) -> Sequence[str]:
        """Notes of the offline AI (providers skipped because they need a network)."""


#: Makes the driver of one test: (context, flow, test mapping, pipelines) -> driver.
DriverFactory = Callable[[InterpreterContext, CompiledFlow, Mapping[str, Any], Pipelines | None], TurnDriver]


class SimulatorDriver:
    """The in-process driver: the interpreter on the simulator's fake clock."""

    def __init__(
        self,
        ctx: InterpreterContext,
        flow: CompiledFlow,
        test: Mapping[str, Any],
        pipelines: Pipelines | None = None,
    ) -> None:
        mock = test.get("mock") or {}
        self.ai = OfflineAI(ctx.flows, mocks=mock.get("ai"), base_dir=flow_dir(flow))
        self.http = ScriptedHttp(mock.get("http"))
        self.sim = Simulator(
            ctx,
            flow,
            ai=self.ai,
            http=self.http,
            contact=test.get("contact"),
            channel=str(test.get("channel") or "cli"),
            vars=test.get("vars"),
            pipelines=pipelines,
        )

    def user(self, text: str) -> None:
        self.sim.user(text)

    def elapse(self, milliseconds: int) -> None:
        self.sim.elapse(milliseconds)

    def agent(self, action: str, text: str = "") -> None:
        self.sim.agent(action, agent=TEST_AGENT, text=text)

    def bot_texts(self) -> list[str]:
        return [sent.text for sent in self.sim.log.sent if sent.sender == "bot"]

    def look(self) -> ConversationLook:
        return ConversationLook.of_state(self.sim.state)

    def trace(self) -> Sequence[TraceEntry]:
        return self.sim.log.trace

    def faults(self) -> Sequence[Fault]:
        return self.sim.log.faults

    def notes(self) -> Sequence[str]:
        return self.ai.notes


__all__ = ["TEST_AGENT", "ConversationLook", "DriverFactory", "SimulatorDriver", "TurnDriver"]
