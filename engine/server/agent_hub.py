"""The agents' event stream (``/ws/agent``): a placeholder until the hub is built.

Contract (kept by the real hub): ``publish`` sends an ephemeral event (presence,
typing) to every node; ``subscribe`` registers an in-process listener that gets every
event, those read from the message log included (kinds ``message``,
``conversation``, ``presence``, ``typing``); ``connections_of`` counts a user's open
sockets on this node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

AgentEventListener = Callable[[dict[str, Any]], None]


class AgentHub:
    def __init__(self) -> None:
        self._listeners: list[AgentEventListener] = []

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        event = {"kind": kind, "data": data}
        for listener in list(self._listeners):
            listener(event)

    def subscribe(self, listener: AgentEventListener) -> None:
        self._listeners.append(listener)

    def connections_of(self, user_id: int) -> int:
        return 0

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
