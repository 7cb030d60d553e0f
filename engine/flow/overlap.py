"""Flows that compete for new conversations on the same channel.

:func:`engine.flow.routing.choose_flow` takes the highest ``priority`` whose ``when``
holds, and breaks a tie by flow id. So of two flows without ``when`` at the same
priority serving the same channel, the one whose id sorts first takes every new
conversation there and the other never starts one: almost always a mistake, and
one nobody notices until a customer gets the wrong flow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.flow.model import CompiledFlow

#: The channel entry that serves every channel.
EVERY = "*"


@dataclass(frozen=True, slots=True)
class Overlap:
    """``winner`` takes the conversations on ``channels`` that ``loser`` is written to take too."""

    winner: CompiledFlow
    loser: CompiledFlow
    #: the shared channels; ``("*",)`` when both serve every channel
    channels: tuple[str, ...]
    priority: int

    def describe_channels(self) -> str:
        """``every channel`` or ``webchat, telegram``."""
        return "every channel" if self.channels == (EVERY,) else ", ".join(self.channels)


def _shared(a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
    if EVERY in a:
        return b
    if EVERY in b:
        return a
    return a & b


def overlapping_flows(flows: Iterable[CompiledFlow]) -> list[Overlap]:
    """For each flow shadowed on some channel, the flow that wins there (one entry per pair).

    Channels a loser already lost to an earlier winner are not reported again.
    """
    unguarded = sorted((f for f in flows if f.when is None), key=lambda f: (-f.priority, f.name))
    found: list[Overlap] = []
    for i, loser in enumerate(unguarded):
        claimed: set[str] = set()
        for winner in unguarded[:i]:
            if winner.priority != loser.priority or EVERY in claimed:
                continue
            shared = _shared(frozenset(winner.channels), frozenset(loser.channels)) - claimed
            if not shared:
                continue
            claimed |= shared
            found.append(Overlap(winner, loser, tuple(sorted(shared)), loser.priority))
    return found


__all__ = ["EVERY", "Overlap", "overlapping_flows"]
