"""A provider for chain tests that plays a script."""

from __future__ import annotations

import asyncio
import time

from engine.ai.types import AIReply, AIRequest


class Fake:
    """A provider that plays a script: one item per call (the last repeats); exceptions are raised.

    ``calls`` are the requests it got, ``called_at`` when (monotonic clock).
    """

    def __init__(self, *script: AIReply | BaseException | str, delay: float = 0.0) -> None:
        self.script = list(script)
        self.delay = delay
        self.calls: list[AIRequest] = []
        self.called_at: list[float] = []

    async def reply(self, request: AIRequest) -> AIReply:
        self.calls.append(request)
        self.called_at.append(time.monotonic())
        item = self.script[min(len(self.calls), len(self.script)) - 1]
        if self.delay:
            await asyncio.sleep(self.delay)
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, str):
            return AIReply(text=item)
        return item
