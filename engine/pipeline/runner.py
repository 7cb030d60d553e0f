"""Running a flow's stages on a message, the same way in a worker and in ``flowdesk try``/``test``.

Processors are built once per (flow revision, direction, stage) and kept: a word
list's automaton is compiled once, not per message. A processor that cannot be
built, or that raises, is handled by its stage's ``on_error``: ``pass`` (the
default) lets the message through unchanged, ``block`` stops it. Either way it is
logged with the processor's name and counted; the conversation never crashes on it.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import PluginError
from engine.flow.model import CompiledFlow, Stage
from engine.metrics import PIPELINE_BLOCKED, PIPELINE_ERRORS
from engine.pipeline.registry import build_processor
from engine.pipeline.types import Block, Message, PipelineContext, Processor

log = logging.getLogger(__name__)

#: Processors kept built (a stage of a revision each); enough for every live flow many times over.
MAX_BUILT = 512


@dataclass
class PipelineResult:
    """The message after the stages, or the stage that blocked it (``blocked``: its reason)."""

    message: Message
    blocked: str | None = None
    reply: str | None = None
    #: problems met on the way (a processor that failed and was passed): for try/test output
    notes: list[str] = field(default_factory=list)


class Pipelines:
    """The pipelines of one process (a worker, or a try/test session)."""

    def __init__(
        self,
        *,
        word_lists: Mapping[str, Mapping[str, Any]] | None = None,
        base_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.word_lists = dict(word_lists or {})
        self.base_dir = base_dir or Path.cwd()
        self.clock = clock
        # Most recently used last; old revisions' processors (and their state) fall out.
        self._built: OrderedDict[tuple[str, str, int], Processor | PluginError] = OrderedDict()
        # Pipelines run in worker threads (off the event loop): one builder at a time.
        self._lock = threading.Lock()

    def run(
        self,
        flow: CompiledFlow,
        direction: str,
        message: Message,
        *,
        conversation_id: str = "",
        key: str = "",
        now: float | None = None,
    ) -> PipelineResult:
        """Run ``flow``'s stages of ``direction`` (``in``/``out``); ``now`` overrides the clock (simulations)."""
        stages = flow.inbound if direction == "in" else flow.outbound
        result = PipelineResult(message)
        if not stages:
            return result
        context = PipelineContext(
            flow=flow.name,
            conversation_id=conversation_id,
            direction=direction,
            key=key or conversation_id,
            now=self.clock() if now is None else now,
            word_lists=self.word_lists,
            base_dir=self.base_dir,
        )
        for index, stage in enumerate(stages):
            outcome = self._apply(flow, stage, index=index, result=result, context=context)
            if isinstance(outcome, Block):
                PIPELINE_BLOCKED.labels(stage.processor, direction).inc()
                result.blocked, result.reply = f"{stage.processor}: {outcome.reason}", outcome.reply
                return result
            result.message = outcome
        return result

    def _apply(
        self, flow: CompiledFlow, stage: Stage, *, index: int, result: PipelineResult, context: PipelineContext
    ) -> Message | Block:
        direction = context.direction
        try:
            processor = self._processor(flow, direction, index, stage)
            # A deep copy: a processor that changed flags in place and then raised leaves no trace.
            outcome = processor.process(copy.deepcopy(result.message), context)
            if not isinstance(outcome, (Message, Block)):
                raise TypeError(f"process() returned {type(outcome).__name__}, not a Message or a Block")
            return outcome
        except Exception as exc:  # a processor must never crash a conversation
            PIPELINE_ERRORS.labels(stage.processor, direction).inc()
            what = f"processor {stage.processor!r} failed ({type(exc).__name__}: {exc})"
            log.warning("%s on a message of flow %r; on_error: %s", what, flow.name, stage.on_error)
            result.notes.append(what)
            if stage.on_error == "block":
                return Block(f"the processor failed ({type(exc).__name__})")
            return result.message

    def _processor(self, flow: CompiledFlow, direction: str, index: int, stage: Stage) -> Processor:
        with self._lock:
            return self._processor_locked(flow, direction, index, stage)

    def _processor_locked(self, flow: CompiledFlow, direction: str, index: int, stage: Stage) -> Processor:
        key = (flow.revision, direction, index)
        built = self._built.get(key)
        if built is None:
            config = stage.config if isinstance(stage.config, Mapping) else {}
            try:
                built = build_processor(stage.processor, config)
            except PluginError as exc:
                built = exc
            self._built[key] = built
            while len(self._built) > MAX_BUILT:
                self._built.popitem(last=False)
        else:
            self._built.move_to_end(key)
        if isinstance(built, PluginError):
            raise built
        return built


def message_from_dict(data: Mapping[str, Any], direction: str = "in") -> Message:
    """A pipeline :class:`Message` from the runtime's message mapping."""
    return Message(
        id=str(data.get("id", "")),
        text=str(data.get("text", "")),
        channel=str(data.get("channel", "")),
        direction=direction,
        flags=dict(data.get("flags") or {}),
        tags=list(data.get("tags") or []),
        meta=dict(data.get("meta") or {}),
        ai_text=data.get("ai_text"),
        choices=list(data.get("choices") or []),
    )


def message_to_dict(message: Message, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The runtime's message mapping, ``base``'s other keys kept."""
    data = {**(base or {}), "id": message.id, "text": message.text, "channel": message.channel}
    data.update(flags=dict(message.flags), meta=dict(message.meta))
    if message.tags:
        data["tags"] = list(message.tags)
    if message.ai_text is not None and message.ai_text != message.text:
        data["ai_text"] = message.ai_text
    else:
        data.pop("ai_text", None)
    return data
