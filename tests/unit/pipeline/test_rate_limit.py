"""``rate_limit``: a sliding window per sender, a polite reply once, bounded memory."""

from __future__ import annotations

import pytest

from engine.pipeline.rate_limit import DEFAULT_REPLY, RateLimit
from engine.pipeline.types import Block, Message, PipelineContext

MESSAGE = Message(id="m1", text="hello?", channel="web")


def send(limiter: RateLimit, now: float, key: str = "contact-1") -> Message | Block:
    context = PipelineContext(flow="shop", conversation_id="c1", direction="in", key=key, now=now)
    return limiter.process(MESSAGE, context)


def passed(outcome: Message | Block) -> bool:
    return isinstance(outcome, Message)


def test_messages_under_the_limit_pass_unchanged() -> None:
    limiter = RateLimit({"max": 3, "per": "1m"})
    assert all(send(limiter, now) is MESSAGE for now in (0.0, 10.0, 20.0))


def test_excess_is_blocked_with_the_reply_once_then_silently() -> None:
    limiter = RateLimit({"max": 2, "per": "1m", "reply": "Slow down a little, please."})
    assert passed(send(limiter, 0.0)) and passed(send(limiter, 1.0))
    first, second, third = send(limiter, 2.0), send(limiter, 3.0), send(limiter, 30.0)
    assert first == Block("rate limited: more than 2 messages in 1m", reply="Slow down a little, please.")
    assert second == Block("rate limited: more than 2 messages in 1m", reply=None)
    assert third == Block("rate limited: more than 2 messages in 1m", reply=None)


def test_the_window_slides_and_a_later_excess_gets_the_reply_again() -> None:
    limiter = RateLimit({"max": 2, "per": "60s", "reply": "wait"})
    send(limiter, 0.0), send(limiter, 30.0)
    assert isinstance(blocked := send(limiter, 31.0), Block) and blocked.reply == "wait"
    # At 60 the message of 0 has left the window; the one of 30 has not.
    assert passed(send(limiter, 60.0))
    assert isinstance(send(limiter, 61.0), Block)
    # At 90 the message of 30 leaves; the reply of 31 is a window old, so a new excess hears it again.
    assert passed(send(limiter, 90.0))
    again = send(limiter, 91.5)
    assert isinstance(again, Block) and again.reply == "wait"


def test_refused_messages_do_not_keep_the_sender_locked_out() -> None:
    limiter = RateLimit({"max": 1, "per": "10s"})
    assert passed(send(limiter, 0.0))
    assert not any(passed(send(limiter, now)) for now in (1.0, 3.0, 5.0, 9.9))
    assert passed(send(limiter, 10.0))


def test_senders_are_counted_separately() -> None:
    limiter = RateLimit({"max": 1, "per": "1h"})
    assert passed(send(limiter, 0.0, key="alice"))
    assert passed(send(limiter, 0.0, key="bob"))
    assert isinstance(send(limiter, 1.0, key="alice"), Block)
    assert passed(send(limiter, 1.0, key="carol"))


def test_default_reply_and_window() -> None:
    limiter = RateLimit({"max": 1})
    send(limiter, 0.0)
    refused = send(limiter, 59.0)
    assert refused == Block("rate limited: more than 1 messages in 1m", reply=DEFAULT_REPLY)
    assert "wait" in DEFAULT_REPLY and "稍等" in DEFAULT_REPLY
    assert passed(send(limiter, 60.0))


def test_an_empty_reply_sends_nothing() -> None:
    limiter = RateLimit({"max": 1, "per": 90, "reply": ""})
    send(limiter, 0.0)
    assert send(limiter, 1.0) == Block("rate limited: more than 1 messages in 90s", reply=None)


def test_idle_senders_are_forgotten() -> None:
    limiter = RateLimit({"max": 5, "per": "1m"})
    for i in range(100):
        send(limiter, float(i) / 10, key=f"visitor-{i}")
    assert limiter.sender_count == 100
    send(limiter, 65.05, key="late")
    # Those last seen at 0.0 .. 5.0 are a whole window away; 5.1 .. 9.9 and "late" remain.
    assert limiter.sender_count == 49 + 1


def test_memory_is_capped_and_the_least_recently_seen_goes_first() -> None:
    limiter = RateLimit({"max": 1, "per": "1h"}, max_senders=3)
    for key in ("a", "b", "c"):
        send(limiter, 0.0, key=key)
    assert isinstance(send(limiter, 1.0, key="a"), Block)  # "a" is now the most recently seen
    send(limiter, 2.0, key="d")  # over the cap: "b" is dropped, not "a"
    assert limiter.sender_count == 3
    assert isinstance(send(limiter, 3.0, key="a"), Block)
    assert passed(send(limiter, 3.0, key="b"))  # forgotten, so it starts a fresh window


@pytest.mark.parametrize(
    ("config", "error", "says"),
    [
        ({"per": "1m"}, ValueError, "needs max"),
        ({"max": 0}, ValueError, "at least 1"),
        ({"max": "10"}, TypeError, "whole number"),
        ({"max": True}, TypeError, "whole number"),
        ({"max": 10, "per": "1 minute"}, ValueError, "duration"),
        ({"max": 10, "per": "0s"}, ValueError, "longer than zero"),
        ({"max": 10, "reply": ["slow down"]}, TypeError, "text"),
    ],
)
def test_bad_config_is_refused_with_a_clear_message(
    config: dict[str, object], error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        RateLimit(config)
