"""Running a flow's stages: order, blocking, failures by ``on_error``, processors built once."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from engine.flow.model import CompiledFlow
from engine.flow.validate import compile_source
from engine.pipeline.runner import Pipelines, message_from_dict, message_to_dict
from engine.pipeline.types import Block, Message, PipelineContext
from tests.plugin_support import install_module

MODULE = "flowdesk_test_processors"


class Shout:
    built = 0

    def __init__(self, config: dict[str, Any]) -> None:
        Shout.built += 1
        self.suffix = str(config.get("suffix", "!"))

    def process(self, message: Message, context: PipelineContext) -> Message:
        return message.replace(text=message.text.upper() + self.suffix, flags={**message.flags, "shouted": True})


class Explode:
    def __init__(self, config: dict[str, Any]) -> None:
        pass

    def process(self, message: Message, context: PipelineContext) -> Message:
        raise RuntimeError("boom")


class Stop:
    def __init__(self, config: dict[str, Any]) -> None:
        self.reply = config.get("reply")

    def process(self, message: Message, context: PipelineContext) -> Block:
        return Block("not today", self.reply)


class NotAProcessor:
    def __init__(self, config: dict[str, Any]) -> None:
        pass


@pytest.fixture(autouse=True)
def fx_module(monkeypatch: pytest.MonkeyPatch) -> None:
    install_module(monkeypatch, MODULE, Shout, Explode, Stop, NotAProcessor)


def flow(inbound: str, outbound: str = "[]") -> CompiledFlow:
    source = f"""
flow: piped
pipeline:
  inbound: {inbound}
  outbound: {outbound}
steps:
  listen:
    wait: message
"""
    result = compile_source(source, "piped.yaml")
    assert result.flow is not None, [d.format() for d in result.diagnostics]
    return result.flow


def message(text: str = "hello  there") -> Message:
    return Message(id="m1", text=text, channel="webchat")


def errors(processor: str) -> float:
    value = REGISTRY.get_sample_value("flowdesk_pipeline_errors_total", {"processor": processor, "direction": "in"})
    return value or 0.0


def test_stages_run_in_order_and_annotate() -> None:
    result = Pipelines().run(flow(f"[normalize, {{'{MODULE}:Shout': {{suffix: '?'}}}}]"), "in", message())
    assert result.blocked is None
    assert result.message.text == "HELLO THERE?"
    assert result.message.flags == {"shouted": True}


def test_a_block_stops_the_rest_with_its_reason_and_reply() -> None:
    stages = f"[{{'{MODULE}:Stop': {{reply: 'Please wait.'}}}}, '{MODULE}:Shout']"
    result = Pipelines().run(flow(stages), "in", message())
    assert result.blocked == f"{MODULE}:Stop: not today"
    assert result.reply == "Please wait."
    assert result.message.text == "hello  there"  # Shout never ran


def test_a_failing_processor_passes_the_message_on_by_default_and_is_counted() -> None:
    name = f"{MODULE}:Explode"
    before = errors(name)
    result = Pipelines().run(flow(f"['{name}', normalize]"), "in", message())
    assert result.blocked is None
    assert result.message.text == "hello there"  # the next stage still ran
    assert result.notes and "boom" in result.notes[0]
    assert errors(name) == before + 1


def test_a_failing_processor_with_on_error_block_stops_the_message() -> None:
    result = Pipelines().run(flow(f"[{{'{MODULE}:Explode': {{on_error: block}}}}]"), "in", message())
    assert result.blocked is not None
    assert "RuntimeError" in result.blocked
    assert "boom" not in result.blocked  # the reason is for logs; the error text is in the notes


@pytest.mark.parametrize(
    ("stage", "why"),
    [
        (f"'{MODULE}:NotAProcessor'", "no process(message, context) method"),
        (f"'{MODULE}:Missing'", "has no attribute 'Missing'"),
        ("'flowdesk_no_such_module:Thing'", "failed to load"),
    ],
)
def test_a_processor_that_cannot_be_built_is_handled_like_a_failure(stage: str, why: str) -> None:
    result = Pipelines().run(flow(f"[{stage}, normalize]"), "in", message())
    assert result.blocked is None
    assert result.message.text == "hello there"
    assert why in result.notes[0]


def test_processors_are_built_once_per_revision_and_stage() -> None:
    pipelines = Pipelines()
    piped = flow(f"['{MODULE}:Shout']")
    Shout.built = 0
    for _ in range(5):
        pipelines.run(piped, "in", message())
    assert Shout.built == 1
    pipelines.run(flow(f"[{{'{MODULE}:Shout': {{suffix: '!!'}}}}]"), "in", message())  # another revision
    assert Shout.built == 2


def test_outbound_stages_are_separate_from_inbound() -> None:
    piped = flow("[]", f"['{MODULE}:Shout']")
    assert Pipelines().run(piped, "in", message()).message.text == "hello  there"
    assert Pipelines().run(piped, "out", message()).message.text == "HELLO  THERE!"


def test_the_runtime_mapping_round_trips_and_keeps_other_keys() -> None:
    data = {"id": "m1", "text": "hi", "channel": "webchat", "flags": {}, "meta": {"logged": True}, "extra": 1}
    converted = message_to_dict(message_from_dict(data).replace(ai_text="[email]", tags=["vip"]), data)
    assert converted == {**data, "ai_text": "[email]", "tags": ["vip"]}
    assert "ai_text" not in message_to_dict(message_from_dict(converted).replace(ai_text=None), converted)
