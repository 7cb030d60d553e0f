"""The WhatsApp channel against a Graph emulator on a real socket, and Meta's recorded webhooks.

What an operator or customer notices: the contract every channel passes; Meta's
URL check answered only with the right verify token; choices shown as buttons,
a list or a numbered text, and a tap on a shortened title still maps back to the
full choice; a template outside the 24 h window; Graph's error codes turned into
the retry or give-up the deliver activity acts on; a retry that sends no part
twice; no secret in an error; and the registry refusing an account without its
app secret.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.channels.whatsapp import WhatsApp, create, shorten
from engine.channels.errors import (
    ChannelThrottled,
    ChannelUnavailable,
    DeliveryRejected,
    ReplyWindowClosed,
    SignatureInvalid,
)
from engine.channels.host import ChannelConfig
from engine.channels.registry import build_channels
from engine.channels.testing import ChannelContract, HttpSendContract, WebhookContract
from engine.channels.types import Attachment, Channel, Incoming, OutboundMessage, WebhookRequest
from tests.vendors.whatsapp import (
    ACCESS_TOKEN,
    APP_SECRET,
    CUSTOMER,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    WhatsAppEmulator,
    button_reply,
    list_reply,
    text_message,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "channels" / "whatsapp"
SETTINGS = {
    "phone_number_id": PHONE_NUMBER_ID,
    "access_token": ACCESS_TOKEN,
    "app_secret": APP_SECRET,
    "verify_token": VERIFY_TOKEN,
}


@pytest.fixture(scope="module", name="fx_graph")
def fixture_graph() -> Iterator[WhatsAppEmulator]:
    with WhatsAppEmulator() as graph:
        yield graph  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _fresh_graph(fx_graph: WhatsAppEmulator) -> None:
    fx_graph.reset()


def make(api_base: str, **overrides: Any) -> WhatsApp:
    return create(ChannelConfig("whatsapp", "default", {**SETTINGS, "api_base": api_base, **overrides}))


def outbound(key: str = "reply-1", text: str = "Your order has shipped.", **changes: Any) -> OutboundMessage:
    return OutboundMessage(conversation_id="conv-1", key=key, text=text, recipient=CUSTOMER, **changes)


def webhook(body: bytes, signature: str | None) -> WebhookRequest:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-hub-signature-256"] = signature
    return WebhookRequest("POST", "/webhooks/whatsapp", headers, {}, body, time.time())


# -- the contracts ---------------------------------------------------------------------------


class TestWhatsAppContract(ChannelContract):
    kind = "whatsapp"
    graph: WhatsAppEmulator

    @pytest.fixture(autouse=True)
    def _graph(self, fx_graph: WhatsAppEmulator) -> None:
        self.graph = fx_graph

    def recipient(self) -> str:
        return CUSTOMER

    async def make_channel(self, api_base: str | None = None) -> Channel:
        return make(api_base or self.graph.url)

    async def received(self, channel: Channel, recipient: str) -> list[str]:
        return self.graph.shown(recipient)


class TestWhatsAppWebhookContract(WebhookContract):
    fixtures = FIXTURES

    async def make_webhook_channel(self) -> WhatsApp:
        return make("http://127.0.0.1:9")

    def sign(self, body: bytes, *, at: float, path: str = "/") -> dict[str, str]:
        return {"x-hub-signature-256": WhatsAppEmulator().signature(body)}

    def forge(self, body: bytes, *, at: float) -> dict[str, str]:
        return {"x-hub-signature-256": WhatsAppEmulator().signature(body, secret="not-the-app-secret")}


class TestWhatsAppHttpSend(HttpSendContract):
    async def make_channel(self, api_base: str | None = None) -> Channel:
        return make(api_base or "http://127.0.0.1:9")

    def outbound(self, key: str = "reply-1", text: str = "Your order has shipped.", **changes: Any) -> OutboundMessage:
        return outbound(key, text, **changes)


# -- Meta's URL check and signatures ---------------------------------------------------------


def _check(query: dict[str, str]) -> WebhookRequest:
    return WebhookRequest("GET", "/webhooks/whatsapp", {}, query, b"", time.time())


def test_the_url_check_answers_the_challenge_only_for_the_verify_token() -> None:
    channel = make("http://127.0.0.1:9")
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    answer = channel.handshake(_check(query))
    assert (answer.status, answer.body) == (200, "1158201444")
    wrong = channel.handshake(_check({**query, "hub.verify_token": "guessed"}))
    assert wrong.status == 403 and "1158201444" not in wrong.body
    assert channel.handshake(_check({**query, "hub.mode": "unsubscribe"})).status == 403
    assert channel.handshake(_check({**query, "hub.verify_token": "ünïcode"})).status == 403


@pytest.mark.parametrize(
    "signature",
    [
        "sha1=" + "0" * 40,  # Meta's older header format, not accepted for the SHA-256 header
        "sha256=",
        "sha256=" + "g" * 64,
        "sha256=zz",
        "sha256=ÿ" + "0" * 63,
    ],
)
def test_a_malformed_signature_is_refused_without_an_other_error(signature: str) -> None:
    channel = make("http://127.0.0.1:9")
    with pytest.raises(SignatureInvalid):
        channel.verify(webhook(b"{}", signature))


def test_the_signature_covers_the_raw_bytes_not_the_json() -> None:
    graph = WhatsAppEmulator()
    channel = make("http://127.0.0.1:9")
    body = graph.webhook_body([text_message("hi")])
    channel.verify(webhook(body, graph.signature(body)))
    same_json = json.dumps(json.loads(body), indent=2).encode()  # equal JSON, other bytes
    with pytest.raises(SignatureInvalid):
        channel.verify(webhook(same_json, graph.signature(body)))


# -- choices -----------------------------------------------------------------------------------


async def test_up_to_three_choices_are_reply_buttons(fx_graph: WhatsAppEmulator) -> None:
    await make(fx_graph.url).send(outbound(text="Which order?", choices=("A-100", "B-200", "C-300")))
    [sent] = fx_graph.sent_to(CUSTOMER)
    assert sent.body["interactive"]["type"] == "button"
    assert (sent.text, sent.buttons, sent.ids) == (
        "Which order?",
        ("A-100", "B-200", "C-300"),
        ("A-100", "B-200", "C-300"),
    )


async def test_four_to_ten_choices_are_a_list(fx_graph: WhatsAppEmulator) -> None:
    choices = tuple(f"Size {n}" for n in range(36, 46))
    await make(fx_graph.url).send(outbound(text="Which size?", choices=choices))
    [sent] = fx_graph.sent_to(CUSTOMER)
    assert sent.body["interactive"]["type"] == "list"
    assert sent.buttons == choices and sent.body["interactive"]["action"]["button"]


async def test_more_than_ten_choices_are_a_numbered_text_a_number_answers(fx_graph: WhatsAppEmulator) -> None:
    choices = tuple(f"Store {n}" for n in range(1, 12))
    await make(fx_graph.url).send(outbound(text="Which store?", choices=choices))
    [sent] = fx_graph.sent_to(CUSTOMER)
    assert sent.type == "text"
    assert sent.text.startswith("Which store?\n\n1. Store 1\n") and sent.text.endswith("11. Store 11")


async def test_a_long_choice_is_shortened_on_screen_and_a_tap_maps_back_to_it(fx_graph: WhatsAppEmulator) -> None:
    channel = make(fx_graph.url)
    choice = "Speak to someone about my refund"
    await channel.send(outbound(text="What next?", choices=("Track my parcel", choice)))
    [sent] = fx_graph.sent_to(CUSTOMER)
    title = sent.buttons[1]
    assert len(title) <= 20 and title.endswith("…") and choice.startswith(title[:-1])
    # The customer taps it: Meta sends back the id we gave and the title they saw.
    body = fx_graph.webhook_body([button_reply(sent.ids[1], title)])
    [incoming] = channel.decode(webhook(body, fx_graph.signature(body)))
    assert isinstance(incoming, Incoming)
    assert incoming.choice == choice and incoming.text == title


async def test_a_long_list_row_maps_back_and_shows_more_in_its_description(fx_graph: WhatsAppEmulator) -> None:
    channel = make(fx_graph.url)
    choices = ("Track", "Refund", "Exchange", "Return an item bought in one of our stores")
    await channel.send(outbound(text="How can we help?", choices=choices))
    [sent] = fx_graph.sent_to(CUSTOMER)
    row = sent.body["interactive"]["action"]["sections"][0]["rows"][3]
    assert len(row["title"]) <= 24 and row["description"] == choices[3]
    body = fx_graph.webhook_body([list_reply(row["id"], row["title"])])
    [incoming] = channel.decode(webhook(body, fx_graph.signature(body)))
    assert isinstance(incoming, Incoming) and incoming.choice == choices[3]


def test_shortening_keeps_whole_words_unless_that_loses_half_the_label() -> None:
    assert shorten("Speak to someone about my refund", 20) == "Speak to someone…"
    assert shorten("Supercalifragilisticexpialidocious", 20) == "Supercalifragilisti…"
    assert shorten("Short", 20) == "Short"


async def test_a_long_text_with_buttons_keeps_the_buttons_under_the_last_part(fx_graph: WhatsAppEmulator) -> None:
    text = "This sentence belongs to a long answer. " * 60  # ~2400 chars: over an interactive body's 1024
    await make(fx_graph.url).send(outbound(text=text.strip(), choices=("Yes", "No")))
    sent = fx_graph.sent_to(CUSTOMER)
    assert [m.type for m in sent] == ["text"] * (len(sent) - 1) + ["interactive"]
    assert sent[-1].buttons == ("Yes", "No")
    assert " ".join(m.text for m in sent).split() == text.split()


async def test_images_and_files_are_sent_by_link(fx_graph: WhatsAppEmulator) -> None:
    files = (
        Attachment("image", url="https://cdn.example.com/box.jpg"),
        Attachment("file", url="https://cdn.example.com/invoice.pdf", name="invoice.pdf"),
    )
    await make(fx_graph.url).send(outbound(text="Here you are.", attachments=files))
    sent = fx_graph.sent_to(CUSTOMER)
    assert [m.type for m in sent] == ["text", "image", "document"]
    assert sent[1].body["image"] == {"link": "https://cdn.example.com/box.jpg"}
    assert sent[2].body["document"] == {"link": "https://cdn.example.com/invoice.pdf", "filename": "invoice.pdf"}


# -- the 24 h window ---------------------------------------------------------------------------


async def test_a_template_is_sent_as_graph_expects(fx_graph: WhatsAppEmulator) -> None:
    fx_graph.close_window(CUSTOMER)  # templates still reach a customer whose window closed
    template = {"name": "order_update", "language": "en_US", "params": ["Sheena", "#4471"]}
    receipt = await make(fx_graph.url).send(outbound(template=template))
    [sent] = fx_graph.sent_to(CUSTOMER)
    assert receipt.status == "sent" and receipt.channel_message_id == sent.wamid
    assert sent.body["template"] == {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Sheena"}, {"type": "text", "text": "#4471"}]}
        ],
    }


async def test_graph_131047_is_reply_window_closed(fx_graph: WhatsAppEmulator) -> None:
    fx_graph.close_window(CUSTOMER)
    with pytest.raises(ReplyWindowClosed) as caught:
        await make(fx_graph.url).send(outbound())
    assert caught.value.code == "131047" and "more than 24 hours" in str(caught.value)
    assert fx_graph.sent_to(CUSTOMER) == []


async def test_a_free_form_reply_after_24_hours_is_refused_before_calling_graph(fx_graph: WhatsAppEmulator) -> None:
    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    channel = WhatsApp(
        account="default",
        phone_number_id=PHONE_NUMBER_ID,
        access_token=ACCESS_TOKEN,
        app_secret=APP_SECRET,
        verify_token=VERIFY_TOKEN,
        api_base=fx_graph.url,
        clock=lambda: now,
    )
    with pytest.raises(ReplyWindowClosed):
        await channel.send(outbound(key="late", customer_at=(now - timedelta(hours=25)).isoformat()))
    assert fx_graph.requests == []
    await channel.send(outbound(key="in-time", customer_at=(now - timedelta(hours=23)).isoformat()))
    assert fx_graph.shown(CUSTOMER) == ["Your order has shipped."]


# -- Graph's errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "status", "wait"), [(130429, 400, 5.0), (131056, 400, 6.0), (80007, 400, 5.0)])
async def test_graph_rate_limit_codes_are_throttled(
    fx_graph: WhatsAppEmulator, code: int, status: int, wait: float
) -> None:
    fx_graph.throttle(code, status=status)
    with pytest.raises(ChannelThrottled) as caught:
        await make(fx_graph.url).send(outbound(key=f"throttled-{code}"))
    assert caught.value.retry_after == wait and str(code) in str(caught.value)


async def test_a_429_waits_as_long_as_retry_after_says(fx_graph: WhatsAppEmulator) -> None:
    fx_graph.throttle(130429, status=429, retry_after="12")
    with pytest.raises(ChannelThrottled) as caught:
        await make(fx_graph.url).send(outbound())
    assert caught.value.retry_after == 12


async def test_another_graph_error_is_rejected_with_its_code(fx_graph: WhatsAppEmulator) -> None:
    fx_graph.reject(131026)
    with pytest.raises(DeliveryRejected) as caught:
        await make(fx_graph.url).send(outbound())
    assert caught.value.code == "131026" and not isinstance(caught.value, ReplyWindowClosed)
    assert str(caught.value).startswith("whatsapp error 131026: ")


async def test_a_graph_5xx_is_unavailable(fx_graph: WhatsAppEmulator) -> None:
    fx_graph.server_error(131000)
    with pytest.raises(ChannelUnavailable):
        await make(fx_graph.url).send(outbound())


async def test_a_retry_after_a_500_mid_split_sends_no_part_twice(fx_graph: WhatsAppEmulator) -> None:
    channel = make(fx_graph.url)
    text = " ".join(f"Sentence {n} of this answer must arrive exactly once." for n in range(200))
    message = outbound(key="split", text=text)  # ~11 000 characters: three parts
    # The first part goes through, the second meets a 500.
    fx_graph.slow(0)
    fx_graph.server_error(131000)
    with pytest.raises(ChannelUnavailable):
        await channel.send(message)
    assert len(fx_graph.sent_to(CUSTOMER)) == 1
    receipt = await channel.send(message)
    sent = fx_graph.sent_to(CUSTOMER)
    assert len(sent) == 3 and len({m.text for m in sent}) == 3
    assert " ".join(m.text for m in sent).split() == message.text.split()
    assert receipt.channel_message_id == sent[-1].wamid
    again = await channel.send(message)
    assert again.status == "duplicate" and again.channel_message_id == sent[-1].wamid
    assert len(fx_graph.sent_to(CUSTOMER)) == 3


async def test_an_attempt_overlapping_a_slow_one_sends_nothing(fx_graph: WhatsAppEmulator) -> None:
    channel = make(fx_graph.url)
    fx_graph.slow(1.0)
    first = asyncio.create_task(channel.send(outbound(key="slow")))
    await asyncio.sleep(0.3)  # the first attempt is waiting for Graph
    with pytest.raises(ChannelUnavailable):
        await channel.send(outbound(key="slow"))
    assert (await first).status == "sent"
    assert (await channel.send(outbound(key="slow"))).status == "duplicate"
    assert fx_graph.shown(CUSTOMER) == ["Your order has shipped."]


async def test_a_wrong_token_is_rejected_without_the_token_in_the_error(
    fx_graph: WhatsAppEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    channel = make(fx_graph.url, access_token="EAAG-wrong-token-4f1c", app_secret="s3cr3t-app")
    with pytest.raises(DeliveryRejected) as caught:
        await channel.send(outbound())
    assert caught.value.code == "190"
    for shown in (str(caught.value), repr(channel), caplog.text):
        assert "EAAG-wrong-token-4f1c" not in shown and "s3cr3t-app" not in shown


async def test_a_graph_error_echoing_a_secret_is_redacted(fx_graph: WhatsAppEmulator) -> None:
    fx_graph.reject(100, message=f"Invalid token {ACCESS_TOKEN}")
    with pytest.raises(DeliveryRejected) as caught:
        await make(fx_graph.url).send(outbound())
    assert ACCESS_TOKEN not in str(caught.value) and "***" in str(caught.value)


async def test_a_message_to_another_phone_number_id_is_refused(fx_graph: WhatsAppEmulator) -> None:
    with pytest.raises(DeliveryRejected) as caught:
        await make(fx_graph.url, phone_number_id="109999999999999").send(outbound())
    assert caught.value.code == "100"


# -- decoding what the emulator sends ----------------------------------------------------------


def test_a_batch_names_each_sender_and_skips_other_numbers() -> None:
    graph = WhatsAppEmulator()
    channel = make("http://127.0.0.1:9")
    body = graph.webhook_body(
        [text_message("one", sender="111"), text_message("two", sender="222")], names={"111": "Ana", "222": "Ben"}
    )
    decoded = channel.decode(webhook(body, graph.signature(body)))
    assert [(d.sender, d.sender_name, d.text) for d in decoded if isinstance(d, Incoming)] == [
        ("111", "Ana", "one"),
        ("222", "Ben", "two"),
    ]


# -- the registry ------------------------------------------------------------------------------


def test_the_registry_builds_an_account_and_refuses_one_without_its_app_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="engine.channels.registry")
    settings = {"whatsapp": {**SETTINGS, "accounts": {"sales": {}, "support": {"app_secret": ""}}}}
    channels = build_channels(settings, environ={})
    assert isinstance(channels.get("whatsapp:sales"), WhatsApp)
    assert "whatsapp:support" not in channels
    assert "channels.whatsapp.accounts.support.app_secret" in caplog.text
    assert APP_SECRET not in caplog.text and ACCESS_TOKEN not in caplog.text
    caplog.clear()
    single = {key: value for key, value in SETTINGS.items() if key != "app_secret"}
    assert "whatsapp" not in build_channels({"whatsapp": single}, environ={})
    assert "channels.whatsapp.app_secret not set" in caplog.text


def test_an_unquoted_phone_number_id_still_matches_metas_metadata() -> None:
    graph = WhatsAppEmulator()
    channel = create(ChannelConfig("whatsapp", "default", {**SETTINGS, "phone_number_id": int(PHONE_NUMBER_ID)}))
    body = graph.webhook_body([text_message("hello")])
    [incoming] = channel.decode(webhook(body, graph.signature(body)))
    assert isinstance(incoming, Incoming) and incoming.text == "hello"
