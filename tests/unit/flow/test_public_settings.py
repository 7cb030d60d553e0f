"""Settings revisions: content-addressed, secret-free, and the one way a context is made."""

from __future__ import annotations

import textwrap

import pytest

from engine.errors import ConfigError
from engine.flow.context import FlowSet
from engine.flow.model import CompiledFlow
from engine.flow.public_settings import DEFAULT_SETTINGS, PublicSettings, interpreter_context
from engine.flow.validate import compile_source
from engine.flowtest.simulate import Simulator
from engine.settings import Settings

SHOP = {
    "brand": "Acme",
    "values": {"shop_api": "http://shop.test"},
    "business_hours": {"support": {"timezone": "Europe/Berlin", "weekly": {"mon": ["09:00-18:00"]}}},
    "limits": {"max_steps_per_turn": 7, "message_max_chars": 500},
    "ai_profiles": {"default": {"provider": "openai", "api_key": "${env:OPENAI_API_KEY}"}},
    "database": {"url": "sqlite:///x.db"},
}


def _flow(text: str) -> CompiledFlow:
    result = compile_source(textwrap.dedent(text), "t.yaml")
    assert result.flow is not None, [d.format() for d in result.diagnostics]
    return result.flow


def _sim(flow: CompiledFlow, settings: PublicSettings | None = None, **kwargs: object) -> Simulator:
    def no_call(call: object, at: str) -> object:
        raise AssertionError("no AI or HTTP call expected")

    ctx = interpreter_context(FlowSet([flow]), settings)
    return Simulator(ctx, flow, ai=no_call, http=no_call, **kwargs)  # type: ignore[arg-type]


def test_the_revision_holds_what_flows_read_and_nothing_secret() -> None:
    public = Settings.from_mapping(SHOP, environ={}).public()
    assert set(public.data) == {"brand", "values", "business_hours", "limits"}
    assert public.data["limits"] == {"max_steps_per_turn": 7}  # the server's limits stay out
    assert "OPENAI_API_KEY" not in str(public.data) and "sqlite" not in str(public.data)
    assert public.flow_settings.brand == "Acme" and set(public.flow_settings.calendars) == {"support"}
    assert public.limits.max_steps_per_turn == 7


def test_the_revision_id_follows_the_content_not_its_order() -> None:
    one = PublicSettings.from_data({"brand": "A", "values": {"x": 1, "y": 2}})
    same = PublicSettings.from_data({"values": {"y": 2, "x": 1}, "brand": "A"})
    other = PublicSettings.from_data({"brand": "B", "values": {"x": 1, "y": 2}})
    assert one.revision == same.revision != other.revision
    assert len(one.revision) == 64
    # Settings that differ only where flows cannot look give the same revision.
    a = Settings.from_mapping({**SHOP, "database": {"url": "sqlite:///a.db"}}, environ={}).public()
    b = Settings.from_mapping(SHOP, environ={}).public()
    assert a.revision == b.revision


def test_a_broken_calendar_is_the_settings_error_not_a_conversations() -> None:
    broken = {**SHOP, "business_hours": {"support": {"timezone": "Mars/Olympus", "weekly": {}}}}
    with pytest.raises(ConfigError, match=r"business_hours\.support"):
        Settings.from_mapping(broken, environ={}).public()


def test_the_context_carries_brand_calendars_and_limits() -> None:
    flow = _flow("""
        flow: hours
        steps:
          hi: { wait: message }
          greet: { say: "{{ settings.brand }} at {{ settings.shop_api }}: {{ business_hours('support') }}" }
          bye: { end: resolved }
    """)
    sim = _sim(flow, Settings.from_mapping(SHOP, environ={}).public())
    assert [s.text for s in sim.user("hi")] == ["Acme at http://shop.test: True"]  # Monday 11:00 in Berlin


def test_a_failed_conversation_apologises_in_the_customers_language() -> None:
    flow = _flow("""
        flow: broken
        steps:
          hi: { wait: message }
          boom: { say: "{{ business_hours('nowhere') }}" }
    """)
    english = _sim(flow)
    assert [s.text for s in english.user("hello")] == [
        "Sorry, something went wrong on our side and I can't continue this chat. Please write to us again in a moment."
    ]
    assert english.log.ended == "failed"
    chinese = _sim(flow)
    assert chinese.user("你好")[0].text.startswith("抱歉")
    declared = _sim(flow, contact={"locale": "zh-CN"})
    assert declared.user("hello")[0].text.startswith("抱歉")
    custom = PublicSettings.from_settings_data({"messages": {"failure": {"en": "Oops, we broke."}}})
    assert [s.text for s in _sim(flow, custom).user("hello")] == ["Oops, we broke."]


def test_a_silent_hand_off_tells_the_customer_they_are_queued() -> None:
    flow = _flow("""
        flow: desk
        steps:
          hi: { wait: message }
          human: { handoff: { queue: billing } }
    """)
    assert [s.text for s in _sim(flow).user("help")] == [
        "You're in the queue for billing. A colleague will be with you as soon as possible."
    ]
    spoken = _flow("""
        flow: desk2
        steps:
          hi: { wait: message }
          human: { say: "Connecting you...", handoff: { queue: billing } }
    """)
    assert [s.text for s in _sim(spoken).user("help")] == ["Connecting you..."]  # the step spoke for itself


def test_conversations_started_before_the_change_stay_silent_on_replay() -> None:
    flow = _flow("""
        flow: desk
        steps:
          hi: { wait: message }
          human: { handoff: { queue: billing } }
    """)

    def no_call(call: object, at: str) -> object:
        raise AssertionError("no call")

    ctx = interpreter_context(FlowSet([flow]), features=frozenset())
    sim = Simulator(ctx, flow, ai=no_call, http=no_call)  # type: ignore[arg-type]
    assert sim.user("help") == []


def test_no_settings_means_the_defaults() -> None:
    assert DEFAULT_SETTINGS.flow_settings.brand == "Flowdesk" and DEFAULT_SETTINGS.data == {}
    empty = Settings.from_mapping({}, environ={}).public()
    assert empty.data == {} and empty.flow_settings == DEFAULT_SETTINGS.flow_settings
