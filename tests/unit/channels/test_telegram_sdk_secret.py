"""Our secret-token check agrees with python-telegram-bot's on the same requests.

python-telegram-bot (``Updater.start_webhook(secret_token=...)``) runs a webhook
server that refuses (403) a request whose ``X-Telegram-Bot-Api-Secret-Token`` is
missing or differs. Its server is started against the Bot API emulator (so it also
checks that the emulator answers a real SDK's ``getMe`` and ``setWebhook``), each
request is sent to it and to our ``verify``, and both must accept or refuse alike.
Skipped where the SDK is not installed (a dev dependency only for this test).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import telegram
import telegram.ext as telegram_ext

from connectors.channels.telegram import SECRET_HEADER, Telegram, create
from engine.channels.errors import SignatureInvalid
from engine.channels.host import ChannelConfig
from engine.channels.types import WebhookRequest
from tests.vendors.telegram import SECRET, TOKEN, TelegramEmulator, TelegramUpdates

#: What Telegram might send, and what an attacker might: exact, absent, empty, near misses.
PRESENTED: list[str | None] = [
    SECRET,
    None,
    "",
    SECRET.upper(),
    SECRET[:-1],
    SECRET + "x",
    "x" + SECRET,
    "another_secret-0123456789",
    SECRET.replace("_", "-"),
]


@pytest.fixture(name="fx_sdk_webhook")
async def fixture_sdk_webhook() -> AsyncIterator[tuple[str, TelegramEmulator]]:
    """python-telegram-bot's webhook server on a free port, registered with the emulator."""
    with TelegramEmulator() as emulator:
        bot = telegram.Bot(TOKEN, base_url=f"{emulator.api_base}/bot")
        updater = telegram_ext.Updater(bot, asyncio.Queue())
        port = _free_port()
        url = f"http://127.0.0.1:{port}/telegram"
        await updater.initialize()
        await updater.start_webhook(
            listen="127.0.0.1", port=port, url_path="telegram", webhook_url=url, secret_token=SECRET
        )
        try:
            yield url, emulator
        finally:
            await updater.stop()
            await updater.shutdown()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_the_sdk_and_our_check_accept_and_refuse_the_same_requests(
    fx_sdk_webhook: tuple[str, TelegramEmulator],
) -> None:
    url, emulator = fx_sdk_webhook
    # The SDK registered its webhook the way Telegram expects, through the emulator.
    assert emulator.webhook["url"] == url and emulator.webhook["secret_token"] == SECRET
    channel = create(ChannelConfig("telegram", "default", {"bot_token": TOKEN, "secret_token": SECRET}))
    updates = TelegramUpdates()
    verdicts: list[tuple[str | None, bool, bool]] = []
    async with httpx.AsyncClient(timeout=10) as client:
        for presented in PRESENTED:
            body = json.dumps(updates.text(5527160143, "hello")).encode()
            headers = {"content-type": "application/json"} | (
                {SECRET_HEADER: presented} if presented is not None else {}
            )
            answer = await client.post(url, content=body, headers=headers)
            assert answer.status_code in (200, 403), answer.text
            sdk_accepts = answer.status_code == 200
            verdicts.append((presented, sdk_accepts, _we_accept(channel, body, headers)))
    disagreements = [v for v in verdicts if v[1] != v[2]]
    assert not disagreements, f"(header, sdk accepts, we accept): {disagreements}"
    assert [v[0] for v in verdicts if v[1]] == [SECRET]  # the comparison is not vacuous: only the secret passes


def _we_accept(channel: Telegram, body: bytes, headers: dict[str, str]) -> bool:
    request = WebhookRequest(
        "POST", "/webhooks/telegram", {k.lower(): v for k, v in headers.items()}, {}, body, time.time()
    )
    try:
        channel.verify(request)
    except SignatureInvalid:
        return False
    return True
