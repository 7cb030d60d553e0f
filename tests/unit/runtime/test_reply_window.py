"""A reply window as the customer meets it: free text while it is open, the flow's template after, never a guess."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.channels.errors import DeliveryRejected, ReplyWindowClosed
from engine.channels.types import Capabilities, OutboundMessage
from engine.runtime.deliveries import failure_code, within_window

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
WHATSAPP = Capabilities(choices=True, reply_window=timedelta(hours=24), templates=True)
TELEGRAM = Capabilities(choices=True)
TEMPLATE = {"name": "order_update", "language": "en", "params": ["A-100"]}


def _message(
    *, wrote_hours_ago: float | None, text: str = "Your order shipped.", template: dict[str, object] | None = None
) -> OutboundMessage:
    customer_at = "" if wrote_hours_ago is None else (NOW - timedelta(hours=wrote_hours_ago)).isoformat()
    return OutboundMessage("c1", "c1:1", text, customer_at=customer_at, template=template or {})


def test_inside_the_window_the_text_goes_and_the_template_stays_home() -> None:
    sent = within_window(_message(wrote_hours_ago=23.9, template=TEMPLATE), WHATSAPP, NOW)
    assert sent.text == "Your order shipped." and sent.template == {}


def test_after_the_window_the_template_goes_instead() -> None:
    sent = within_window(_message(wrote_hours_ago=24.1, template=TEMPLATE), WHATSAPP, NOW)
    assert sent.template == TEMPLATE


def test_after_the_window_without_a_template_nothing_is_attempted() -> None:
    with pytest.raises(ReplyWindowClosed) as raised:
        within_window(_message(wrote_hours_ago=30), WHATSAPP, NOW)
    assert str(raised.value).startswith("window closed")
    assert failure_code(raised.value) == "window_closed"


def test_an_unknown_last_message_time_never_closes_the_window() -> None:
    assert within_window(_message(wrote_hours_ago=None), WHATSAPP, NOW).text == "Your order shipped."
    garbled = OutboundMessage("c1", "k", "hi", customer_at="yesterday")
    assert within_window(garbled, WHATSAPP, NOW).text == "hi"


def test_a_channel_without_a_window_or_templates_sends_the_text() -> None:
    sent = within_window(_message(wrote_hours_ago=500, template=TEMPLATE), TELEGRAM, NOW)
    assert sent.text == "Your order shipped." and sent.template == {}


def test_a_template_only_message_goes_as_the_template_where_templates_exist() -> None:
    only = _message(wrote_hours_ago=1, text="", template=TEMPLATE)
    assert within_window(only, WHATSAPP, NOW).template == TEMPLATE
    with pytest.raises(DeliveryRejected, match="has no text for a channel without templates"):
        within_window(only, TELEGRAM, NOW)


def test_naive_times_count_as_utc() -> None:
    naive = (NOW - timedelta(hours=25)).replace(tzinfo=None).isoformat()
    with pytest.raises(ReplyWindowClosed):
        within_window(OutboundMessage("c1", "k", "hi", customer_at=naive), WHATSAPP, NOW)
