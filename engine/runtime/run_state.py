"""What a conversation's workflow keeps while it runs and carries, whole, into its next run.

:class:`RunState` is read from the run's :class:`ConversationInput` and written back
into the next run's input at continue-as-new. The input's fields stay as they are,
so runs started by older code continue on newer code and back. Whatever lives only
for one run (tasks, the outbox's queue, caches) is the workflow's, not here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

from engine.flow.events import Event, event_from_dict, to_dict
from engine.flow.state import ConversationState
from engine.runtime.types import ConversationInput


@dataclass
class RunState:
    """The mutable state of a conversation's workflow run (see the module docstring)."""

    #: the interpreter's state; None until the run begins a new conversation
    state: ConversationState | None
    #: events accepted and not yet interpreted, oldest first
    events: deque[Event]
    #: channel message ids already accepted (oldest first, at most SEEN_LIMIT)
    seen: dict[str, None]
    #: timer id -> ISO due time of the timers running
    timers: dict[str, str]
    #: replies queued so far, over every run (delivery keys and log ids stay unique)
    sent: int
    #: flow id -> live revision, as far as the conversation knows
    live: dict[str, str]
    #: the settings revision the conversation runs on ("" = the defaults)
    settings: str
    #: the agent holding the hand-off ("" = nobody): set by the ``agent`` update's handler the
    #: moment a claim is granted, so that the next update's validator sees it even before the
    #: interpreter has run the claim (two takes in one workflow task: one wins)
    holder: str = ""

    @classmethod
    def of(cls, data: ConversationInput) -> RunState:
        """The state a run starts with: a new conversation's, or the one carried over."""
        return cls(
            state=ConversationState.from_dict(data.state) if data.state is not None else None,
            events=deque(event_from_dict(e) for e in data.backlog),
            seen=dict.fromkeys(data.seen),
            timers=dict(data.timers),
            sent=data.sent,
            live=dict(data.live),
            settings=data.settings,
            holder=data.holder,
        )

    def carry_over(self, data: ConversationInput) -> ConversationInput:
        """The next run's input: this run's input with the state as it is now."""
        assert self.state is not None
        return replace(
            data,
            flow=self.state.flow,
            revision=self.state.revision,
            contact=self.state.contact,
            state=self.state.to_dict(),
            seen=list(self.seen),
            timers=dict(self.timers),
            backlog=[to_dict(e) for e in self.events],
            sent=self.sent,
            live=dict(self.live),
            settings=self.settings,
            holder=self.holder,
            vars={},  # only for beginning the conversation, which is done
        )
