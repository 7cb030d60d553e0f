"""The Telegram channel against a Bot API emulator: the channel contract, then Telegram's own cases.

What a user notices: webhooks are refused without the secret header; a customer's
tap on a button comes back as the choice it shows, however long or un-ASCII the
label; a long answer arrives whole, in parts of at most 4096 characters, with the
buttons under the last; a retry never repeats a part; Telegram's "wait N seconds"
is obeyed; the bot token shows up in no error and no log line; presses are
answered; ``setup`` registers the webhook; and a bad or missing secret keeps the
channel from starting, saying which setting to fix.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from connectors.channels.telegram import SECRET_HEADER, Telegram, create
from engine.channels.errors import (
    ChannelThrottled,
    ChannelUnavailable,
    DeliveryRejected,
    PayloadInvalid,
    SignatureInvalid,
)
from engine.channels.host import ChannelConfig
from engine.channels.registry import build_channels
from engine.channels.testing import ChannelContract, HttpSendContract, ScriptedVendor, WebhookContract
from engine.channels.types import (
    AcknowledgingChannel,
    Attachment,
    Channel,
    Ignored,
    Incoming,
    OutboundMessage,
    SetupChannel,
    WebhookChannel,
    WebhookRequest,
)
from engine.errors import ConfigError
from tests.vendors.telegram import SECRET, TOKEN, TelegramEmulator, TelegramUpdates

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "channels" / "telegram"
CHAT = 5527160143


@pytest.fixture(name="fx_telegram")
def fixture_telegram() -> Iterator[TelegramEmulator]:
    with TelegramEmulator() as emulator:
        yield emulator


def _channel(api_base: str, **params: Any) -> Telegram:
    settings = {"bot_token": TOKEN, "secret_token": SECRET, "api_base": api_base, **params}
    return create(ChannelConfig("telegram", "default", settings))


def _request(update: dict[str, Any], secret: str | None = SECRET) -> WebhookRequest:
    headers = {"content-type": "application/json"} | ({SECRET_HEADER.lower(): secret} if secret is not None else {})
    body = json.dumps(update).encode()
    return WebhookRequest("POST", "/webhooks/telegram", headers, {}, body, time.time())


def _reply(key: str = "conv-1:1", **fields: Any) -> OutboundMessage:
    """A reply to the test chat, as the runtime hands it to the channel."""
    return ChannelContract().outbound(key=key, **({"recipient": str(CHAT), "contact": {"id": "c-1"}} | fields))


def _decoded(channel: Telegram, update: dict[str, Any]) -> Incoming | Ignored:
    request = _request(update)
    channel.verify(request)
    (item,) = channel.decode(request)
    assert isinstance(item, Incoming | Ignored)
    return item


# -- the contract ---------------------------------------------------------------------------------


class TestTelegramContract(ChannelContract, WebhookContract, HttpSendContract):
    kind = "telegram"
    fixtures: ClassVar[Path] = FIXTURES
    emulator: TelegramEmulator

    @pytest.fixture(autouse=True)
    def _emulator(self, fx_telegram: TelegramEmulator) -> None:
        self.emulator = fx_telegram

    def recipient(self) -> str:
        return str(CHAT)

    async def make_channel(self, api_base: str | None = None) -> Channel:
        return _channel(api_base or self.emulator.api_base)

    async def make_webhook_channel(self) -> WebhookChannel:
        channel = await self.make_channel()
        assert isinstance(channel, WebhookChannel)
        return channel

    async def received(self, channel: Channel, recipient: str) -> list[str]:
        return self.emulator.texts(recipient)

    def sign(self, body: bytes, *, at: float, path: str = "/") -> dict[str, str]:
        return {SECRET_HEADER: SECRET}

    def forge(self, body: bytes, *, at: float) -> dict[str, str]:
        return {SECRET_HEADER: "someone-elses_secret-token"}

    async def test_a_body_changed_after_signing_is_refused(self) -> None:
        # Telegram's header is a shared secret, not a signature over the body: TLS keeps the body
        # intact. What can be checked is that the body plays no part, and a wrong header fails anyway.
        channel = await self.make_webhook_channel()
        body = next(iter(self.recorded().values()))
        channel.verify(self.request(body + b" ", self.sign(body, at=time.time())))
        with pytest.raises(SignatureInvalid):
            channel.verify(self.request(body + b" ", self.forge(body, at=time.time())))


def test_it_is_a_webhook_channel_that_acknowledges_and_sets_itself_up(fx_telegram: TelegramEmulator) -> None:
    channel = _channel(fx_telegram.api_base)
    assert isinstance(channel, WebhookChannel)
    assert isinstance(channel, AcknowledgingChannel) and isinstance(channel, SetupChannel)
    assert channel.account == "default"
    caps = channel.capabilities
    assert (caps.choices, caps.images, caps.files, caps.max_text_length, caps.reply_window) == (
        True,
        True,
        True,
        4096,
        None,
    )


def test_the_secret_header_is_compared_exactly() -> None:
    channel = _channel("http://127.0.0.1:9")
    update = TelegramUpdates().text(CHAT, "hi")
    for presented in (None, "", SECRET.upper(), SECRET + " ", SECRET[:-1], " " + SECRET, "é" + SECRET):
        with pytest.raises(SignatureInvalid):
            channel.verify(_request(update, secret=presented))
    channel.verify(_request(update))


# -- buttons ----------------------------------------------------------------------------------


async def test_a_tap_on_a_long_or_unicode_button_comes_back_as_its_choice(fx_telegram: TelegramEmulator) -> None:
    channel = _channel(fx_telegram.api_base)
    choices = (
        "Yes, please deliver to the address on file " * 5,  # 215 characters: far over callback_data's 64 bytes
        "送货上门，周末也可以 🚚",
        "Nein — ich hole es selbst ab",
    )
    await channel.send(_reply(text="How should we deliver?", choices=choices))
    (sent,) = fx_telegram.wait_for(CHAT, 1)
    assert sent.buttons == list(choices)  # the emulator refuses callback_data over 64 bytes: it took them
    updates = TelegramUpdates()
    for label in choices:
        pressed = _decoded(channel, updates.press(sent, label))
        assert isinstance(pressed, Incoming)
        assert (pressed.choice, pressed.text, pressed.sender) == (label, label, str(CHAT))


def test_a_tap_on_a_message_too_old_to_show_its_keyboard_is_ignored() -> None:
    channel = _channel("http://127.0.0.1:9")
    query = {
        "id": "77",
        "from": {"id": CHAT, "is_bot": False},
        "message": {"message_id": 9, "chat": {"id": CHAT}, "date": 0},
    }
    got = _decoded(channel, {"update_id": 5, "callback_query": query | {"data": "fd:0"}})
    assert got == Ignored("stale_button")
    # A button someone else's code made carries its own data: that is the choice.
    other = _decoded(channel, {"update_id": 6, "callback_query": query | {"data": "refund"}})
    assert isinstance(other, Incoming) and other.choice == "refund"


# -- sending ----------------------------------------------------------------------------------


async def test_a_long_answer_is_split_at_4096_with_the_buttons_under_the_last_part(
    fx_telegram: TelegramEmulator,
) -> None:
    channel = _channel(fx_telegram.api_base)
    text = " ".join(f"Step {n}: check the label on the parcel and compare it." for n in range(300))
    receipt = await channel.send(_reply(text=text, choices=("Done", "Help")))
    sent = fx_telegram.messages(CHAT)
    assert len(sent) == len(text) // 4096 + 1 == 5
    assert all(len(m.text) <= 4096 for m in sent)
    assert " ".join(m.text for m in sent).split() == text.split()
    assert [m.buttons for m in sent] == [[], [], [], [], ["Done", "Help"]]
    assert receipt.status == "sent" and receipt.channel_message_id == str(sent[-1].message_id)


async def test_a_retry_after_a_500_half_way_sends_each_part_once(fx_telegram: TelegramEmulator) -> None:
    channel = _channel(fx_telegram.api_base)
    text = " ".join(f"Sentence number {n} of a long reply." for n in range(300))  # 3 parts
    reply = _reply(key="conv-1:7", text=text)
    fx_telegram.fail_next(500, method="sendMessage", after=1)
    with pytest.raises(ChannelUnavailable):
        await channel.send(reply)
    assert len(fx_telegram.messages(CHAT)) == 1
    receipt = await channel.send(reply)  # the deliver activity's retry
    sent = fx_telegram.messages(CHAT)
    assert len(sent) == 3 and len({m.text for m in sent}) == 3
    assert " ".join(m.text for m in sent).split() == text.split()
    assert receipt.status == "sent"
    calls = len(fx_telegram.calls)
    again = await channel.send(reply)
    assert again.status == "duplicate" and again.channel_message_id == str(sent[-1].message_id)
    assert len(fx_telegram.calls) == calls  # nothing was sent for the duplicate


async def test_a_retry_that_overlaps_a_slow_first_attempt_sends_nothing_twice(fx_telegram: TelegramEmulator) -> None:
    channel = _channel(fx_telegram.api_base)
    reply = _reply(key="conv-1:9", text="Your refund is on its way.")
    fx_telegram.slow_next(0.5, method="sendMessage")
    first, retry = await asyncio.gather(channel.send(reply), channel.send(reply))
    assert fx_telegram.texts(CHAT) == ["Your refund is on its way."]
    assert {first.status, retry.status} == {"sent", "duplicate"}
    assert first.channel_message_id == retry.channel_message_id


async def test_an_image_goes_by_send_photo_before_the_text(fx_telegram: TelegramEmulator) -> None:
    channel = _channel(fx_telegram.api_base)
    photo = Attachment(kind="image", url="https://shop.example.com/label.png")
    await channel.send(_reply(text="Print this label.", attachments=(photo,), choices=("OK",)))
    sent = fx_telegram.messages(CHAT)
    assert [(m.kind, m.media or m.text, m.buttons) for m in sent] == [
        ("photo", "https://shop.example.com/label.png", []),
        ("text", "Print this label.", ["OK"]),
    ]


async def test_a_reply_with_no_chat_or_nothing_to_show_is_rejected_without_calling_telegram(
    fx_telegram: TelegramEmulator,
) -> None:
    channel = _channel(fx_telegram.api_base)
    with pytest.raises(DeliveryRejected, match="names no Telegram chat") as no_chat:
        await channel.send(_reply(key="k-nochat", recipient=""))
    with pytest.raises(DeliveryRejected, match="nothing to send") as empty:
        await channel.send(_reply(key="k-empty", text="  "))
    assert (no_chat.value.code, empty.value.code) == ("no_recipient", "empty")
    assert fx_telegram.calls == []


async def test_telegrams_429_is_waited_out_for_the_time_its_body_names() -> None:
    async with ScriptedVendor() as vendor:
        channel = _channel(vendor.url)
        body = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 17"}
        vendor.answer(429, body | {"parameters": {"retry_after": 17}}, {"Retry-After": "3"})
        with pytest.raises(ChannelThrottled) as caught:
            await channel.send(_reply(key="k-429"))
    assert caught.value.retry_after == 17  # the body's parameters win over the header


async def test_chat_not_found_is_rejected_for_good_with_telegrams_code(fx_telegram: TelegramEmulator) -> None:
    channel = _channel(fx_telegram.api_base)
    fx_telegram.fail_next(400, "Bad Request: chat not found")
    with pytest.raises(DeliveryRejected) as caught:
        await channel.send(_reply(key="k-400"))
    assert str(caught.value) == "telegram error 400: Bad Request: chat not found"
    assert caught.value.code == "400"


async def test_the_bot_token_is_in_no_error_and_no_log_line(
    fx_telegram: TelegramEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    raised: list[Exception] = []

    async def failure(channel: Telegram, key: str) -> None:
        with pytest.raises((DeliveryRejected, ChannelUnavailable)) as caught:
            await channel.send(_reply(key=key))
        raised.append(caught.value)

    await failure(_channel(fx_telegram.api_base, bot_token="999:wrong-token-of-another-bot"), "t-1")
    async with ScriptedVendor() as vendor:  # a proxy that echoes the URL it was called with
        vendor.answer(400, {"ok": False, "error_code": 400, "description": f"no route /bot{TOKEN}/sendMessage"})
        vendor.answer(502, f"bad gateway for /bot{TOKEN}/sendMessage".encode())
        await failure(_channel(vendor.url), "t-2")
        await failure(_channel(vendor.url), "t-3")
        gone = vendor.url
    await failure(_channel(gone), "t-4")  # connection refused: httpx's error names the URL

    assert [type(e).__name__ for e in raised] == [
        "DeliveryRejected",
        "DeliveryRejected",
        "ChannelUnavailable",
        "ChannelUnavailable",
    ]
    assert str(raised[0]) == "telegram error 401: Unauthorized"
    assert str(raised[1]) == "telegram error 400: no route /bot<bot token>/sendMessage"
    for error in raised:
        assert TOKEN not in str(error) and "wrong-token" not in str(error)
        # no httpx error (with its URL) attached to be printed with a traceback
        assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    # httpx logs every request's URL; the lines are there, with the token replaced.
    assert "HTTP Request: POST" in caplog.text and "/bot<bot token>/sendMessage" in caplog.text
    assert TOKEN not in caplog.text and "wrong-token" not in caplog.text


# -- acknowledging and setting up ---------------------------------------------------------------


async def test_acknowledge_answers_each_button_press_and_never_raises(fx_telegram: TelegramEmulator) -> None:
    channel = _channel(fx_telegram.api_base)
    await channel.send(_reply(text="Rate us", choices=("Good", "Bad")))
    (sent,) = fx_telegram.wait_for(CHAT, 1)
    updates = TelegramUpdates()
    press = updates.press(sent, "Good")
    decoded = [_decoded(channel, press), _decoded(channel, updates.text(CHAT, "thanks"))]
    await channel.acknowledge(decoded)
    assert fx_telegram.answered_callbacks == [{"callback_query_id": press["callback_query"]["id"]}]
    fx_telegram.fail_next(400, "Bad Request: query is too old", method="answerCallbackQuery")
    await channel.acknowledge(decoded)  # logged, not raised: the message itself was accepted
    assert len(fx_telegram.answered_callbacks) == 1


async def test_setup_registers_the_webhook_with_the_secret(fx_telegram: TelegramEmulator) -> None:
    channel = _channel(fx_telegram.api_base)
    said = await channel.setup("https://support.example.com/webhooks/telegram")
    assert fx_telegram.webhook == {
        "url": "https://support.example.com/webhooks/telegram",
        "secret_token": SECRET,
        "allowed_updates": ["message", "edited_message", "callback_query"],
    }
    assert "https://support.example.com/webhooks/telegram" in said
    status, info = fx_telegram.handle(f"/bot{TOKEN}/getWebhookInfo", {})
    assert status == 200 and info["result"]["url"] == "https://support.example.com/webhooks/telegram"
    assert SECRET not in said and TOKEN not in said
    with pytest.raises(DeliveryRejected, match="HTTPS URL must be provided"):
        await channel.setup("support.example.com/webhooks/telegram")


# -- decoding errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{", "is JSON"),
        (b"[]", "a JSON object; this body is a list"),
        (b'{"message": {"text": "hi"}}', "update_id"),
        (b'{"update_id": true, "message": {}}', "update_id"),
        (b'{"update_id": 1, "message": "hi"}', "update 1: message is not an object"),
        (b'{"update_id": 1, "message": {"text": "hi"}}', "chat.id"),
    ],
)
def test_a_body_that_is_not_an_update_says_what_is_wrong(body: bytes, says: str) -> None:
    channel = _channel("http://127.0.0.1:9")
    with pytest.raises(PayloadInvalid, match=says):
        channel.decode(WebhookRequest("POST", "/webhooks/telegram", {}, {}, body, time.time()))


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["has spaces", "x" * 257, "émoji", "semi;colon"])
def test_a_malformed_secret_token_is_a_config_error_naming_the_setting(secret: str) -> None:
    with pytest.raises(ConfigError, match=r"channels\.telegram\.accounts\.sales\.secret_token must be 1-256"):
        create(ChannelConfig("telegram", "sales", {"bot_token": TOKEN, "secret_token": secret}))


def test_an_api_base_that_is_not_a_url_is_a_config_error_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"channels\.telegram\.api_base must be an http\(s\) URL"):
        create(ChannelConfig("telegram", "default", {"bot_token": TOKEN, "secret_token": SECRET, "api_base": "api.x"}))


def test_the_registry_builds_each_account_and_leaves_out_one_without_its_secret(
    fx_telegram: TelegramEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="engine.channels.registry")
    block = {
        "api_base": fx_telegram.api_base,
        "accounts": {
            "sales": {"bot_token": TOKEN, "secret_token": "${env:TG_SECRET}"},
            "support": {"bot_token": TOKEN},
        },
    }
    channels = build_channels({"telegram": block}, environ={"TG_SECRET": SECRET})
    assert isinstance(channels["telegram:sales"], Telegram) and channels["telegram:sales"].account == "sales"
    assert "telegram:support" not in channels
    assert "channels.telegram.accounts.support.secret_token not set" in caplog.text
    single = build_channels({"telegram": {"bot_token": TOKEN}}, environ={})
    assert "telegram" not in single
    assert "channels.telegram.secret_token not set" in caplog.text


# -- the emulator itself --------------------------------------------------------------------------


def test_the_emulator_waits_for_messages_sent_from_another_thread(fx_telegram: TelegramEmulator) -> None:
    def later() -> None:
        time.sleep(0.2)
        for n in range(2):
            fx_telegram.handle(f"/bot{TOKEN}/sendMessage", {"chat_id": "42", "text": f"m{n}"})

    threading.Thread(target=later).start()
    assert [m.text for m in fx_telegram.wait_for(42, 2, timeout=5)] == ["m0", "m1"]
    with pytest.raises(AssertionError, match="received 2 of 3"):
        fx_telegram.wait_for(42, 3, timeout=0.2)
    assert fx_telegram.handle("/botnope/getMe", {}) == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
