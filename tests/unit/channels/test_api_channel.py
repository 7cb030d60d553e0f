"""The signed API channel: the shared contracts, its wire format both ways, and its documentation's snippets.

The callback side is checked by :class:`tests.vendors.api_receiver.ApiReceiver`, which
verifies signatures with HMAC code of its own, and by openssl: neither is the
channel's :func:`sign`, so a mistake in it cannot pass by agreeing with itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.channels import api
from engine.channels.errors import (
    ChannelThrottled,
    ChannelUnavailable,
    DeliveryRejected,
    PayloadInvalid,
    SignatureInvalid,
)
from engine.channels.host import ChannelConfig
from engine.channels.registry import build_channels
from engine.channels.testing import ChannelContract, HttpSendContract, ScriptedVendor, StaleSignatureContract
from engine.channels.types import Attachment, Channel, Incoming, WebhookChannel, WebhookRequest
from engine.errors import ConfigError
from tests.vendors.api_receiver import ApiReceiver, fail, inbound_body, post_inbound, signed_headers, slow

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "channels" / "api"
DOC = REPO / "docs" / "channels.md"
SECRET = "crm-secret-0123456789abcdef"
OTHER_SECRET = "not-the-crm-secret-at-all"


def make_api(callback_url: str, *, secret: str = SECRET, account: str = "crm") -> api.ApiChannel:
    return api.create(ChannelConfig("api", account, {"secret": secret, "callback_url": callback_url}))


def webhook(body: bytes, headers: dict[str, str], *, received_at: float | None = None) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        path="/webhooks/api/crm",
        headers={k.lower(): v for k, v in headers.items()},
        query={},
        body=body,
        received_at=time.time() if received_at is None else received_at,
    )


class TestApiChannelContract(ChannelContract, StaleSignatureContract, HttpSendContract):
    kind = "api"
    fixtures = FIXTURES
    receiver: ApiReceiver

    @pytest.fixture(autouse=True)
    def _receiver(self) -> Iterator[None]:
        with ApiReceiver(SECRET) as receiver:
            self.receiver = receiver
            yield

    async def make_channel(self, api_base: str | None = None) -> Channel:
        return make_api(f"{api_base}/flowdesk/replies" if api_base else self.receiver.url)

    async def received(self, channel: Channel, recipient: str) -> list[str]:
        return self.receiver.texts(recipient)

    async def make_webhook_channel(self) -> WebhookChannel:
        return make_api(self.receiver.url)

    def sign(self, body: bytes, *, at: float, path: str = "/") -> dict[str, str]:
        return signed_headers(SECRET, body, timestamp=int(at))

    def forge(self, body: bytes, *, at: float) -> dict[str, str]:
        return signed_headers(OTHER_SECRET, body, timestamp=int(at))


# -- inbound: signatures ---------------------------------------------------------------------------

BODY = inbound_body("c-42", "m-1001", "Where is my order #123456?")
#: A fixed "now" for parametrized cases: they are built at collection, maybe minutes before they run.
NOW = 1_764_669_600


@pytest.mark.parametrize("offset", [-299, 0, 299])
def test_a_timestamp_within_five_minutes_either_way_is_accepted(offset: int) -> None:
    make_api("https://crm.example.com/r").verify(
        webhook(BODY, signed_headers(SECRET, BODY, timestamp=NOW + offset), received_at=NOW)
    )


@pytest.mark.parametrize(("offset", "said"), [(-301, "old"), (301, "ahead of this server's clock")])
def test_a_stale_or_future_timestamp_is_refused(offset: int, said: str) -> None:
    request = webhook(BODY, signed_headers(SECRET, BODY, timestamp=NOW + offset), received_at=NOW)
    with pytest.raises(SignatureInvalid, match=said):
        make_api("https://crm.example.com/r").verify(request)


def _good() -> dict[str, str]:
    return signed_headers(SECRET, BODY, timestamp=NOW)


@pytest.mark.parametrize(
    ("headers", "said"),
    [
        ({"x-flowdesk-signature": _good()["x-flowdesk-signature"]}, "X-Flowdesk-Timestamp and X-Flowdesk-Signature"),
        ({"x-flowdesk-timestamp": _good()["x-flowdesk-timestamp"]}, "X-Flowdesk-Timestamp and X-Flowdesk-Signature"),
        ({**_good(), "x-flowdesk-timestamp": "1764669600.5"}, "must be Unix seconds"),
        ({**_good(), "x-flowdesk-timestamp": "-1"}, "must be Unix seconds"),
        ({**_good(), "x-flowdesk-signature": _good()["x-flowdesk-signature"].removeprefix("sha256=")}, "sha256="),
        ({**_good(), "x-flowdesk-signature": "sha1=" + "0" * 40}, "sha256="),
        ({**_good(), "x-flowdesk-signature": "sha256=" + "zz" * 32}, "64 hex digits"),
        ({**_good(), "x-flowdesk-signature": "sha256=" + "0" * 64}, "does not match"),
    ],
)
def test_a_malformed_or_wrong_signature_is_refused_without_revealing_the_secret(
    headers: dict[str, str], said: str
) -> None:
    channel = make_api("https://crm.example.com/r")
    with pytest.raises(SignatureInvalid, match=re.escape(said)) as refused:
        channel.verify(webhook(BODY, headers, received_at=NOW))
    expected = api.sign(SECRET, headers.get("x-flowdesk-timestamp", "0"), BODY).removeprefix("sha256=")
    assert SECRET not in str(refused.value) and expected not in str(refused.value)
    assert SECRET not in repr(channel)


def test_the_signature_is_checked_before_anything_is_parsed() -> None:
    # A body that is not JSON, badly signed: a signature problem (401), not a payload one (400).
    body = b"{not json"
    with pytest.raises(SignatureInvalid):
        make_api("https://crm.example.com/r").verify(webhook(body, signed_headers(OTHER_SECRET, body)))


def test_a_signature_in_upper_case_hex_is_the_same_signature() -> None:
    headers = _good()
    headers["x-flowdesk-signature"] = "sha256=" + headers["x-flowdesk-signature"].removeprefix("sha256=").upper()
    make_api("https://crm.example.com/r").verify(webhook(BODY, headers, received_at=NOW))


def test_a_body_signed_again_with_another_timestamp_is_the_same_message() -> None:
    channel = make_api("https://crm.example.com/r")
    now = time.time()
    first = webhook(BODY, signed_headers(SECRET, BODY, timestamp=int(now)), received_at=now)
    again = webhook(BODY, signed_headers(SECRET, BODY, timestamp=int(now) + 120), received_at=now + 120)
    assert first.headers["x-flowdesk-signature"] != again.headers["x-flowdesk-signature"]
    channel.verify(first)
    channel.verify(again)
    ids = [[m.message_id for m in channel.decode(r) if isinstance(m, Incoming)] for r in (first, again)]
    assert ids == [["m-1001"], ["m-1001"]]


async def test_the_sending_helper_posts_a_message_the_channel_accepts() -> None:
    async with ScriptedVendor() as flowdesk:
        body = inbound_body("c-7", "m-7", "hello", choice="yes")
        posted = await asyncio.to_thread(post_inbound, flowdesk.url + "/webhooks/api/crm", SECRET, body)
    assert posted.status == 200 and posted.seconds > 0
    (seen,) = flowdesk.requests
    request = webhook(seen.body, seen.headers)
    make_api("https://crm.example.com/r").verify(request)
    assert api.decode_message(request.body).choice == "yes"


# -- inbound: the body ----------------------------------------------------------------------------


def _body(contact: Any = None, message: Any = None, **top: Any) -> bytes:
    data = {"contact": {"id": "c-42"} if contact is None else contact, **top}
    data["message"] = {"id": "m-1", "text": "hi"} if message is None else message
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (
            _body(message={"text": "hi"}),
            "message.id is required (a string unique per message: a redelivery with the same id is ignored)",
        ),
        (_body(message={"id": "", "text": "hi"}), "message.id is required"),
        (_body(message={"id": 1001, "text": "hi"}), "message.id is required"),
        (_body(message={"id": "m" * 257, "text": "hi"}), "message.id is 257 characters long; at most 256"),
        (_body(contact={"name": "Ana"}), "contact.id is required (a string naming the customer in your system)"),
        (_body(contact={"id": "   "}), "contact.id is required"),
        (_body(contact={"id": "c" * 300}), "contact.id is 300 characters long"),
        (_body(contact="c-42"), "contact is required (a JSON object)"),
        (json.dumps({"contact": {"id": "c-42"}}).encode(), "message is required (a JSON object)"),
        (_body(message={"id": "m-1"}), "message.text is required"),
        (_body(message={"id": "m-1", "text": ["hi"]}), "message.text is required"),
        (_body(message={"id": "m-1", "text": " "}), "message.text is empty"),
        (
            _body(message={"id": "m-1", "text": "hi", "choice": 2}),
            "message.choice must be a string when given, got int",
        ),
        (_body(contact={"id": "c-42", "name": {"first": "Ana"}}), "contact.name must be a string when given"),
        (_body(contact={"id": "c-42", "locale": "x" * 36}), "contact.locale is 36 characters long; at most 35"),
        (b'[{"contact": {"id": "c-42"}}]', "the body must be a JSON object"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 100_000, "not JSON"),
    ],
)
def test_a_body_that_breaks_the_format_names_the_field(body: bytes, said: str) -> None:
    with pytest.raises(PayloadInvalid) as refused:
        api.decode_message(body)
    assert said in str(refused.value)


def test_a_choice_without_words_reads_as_its_label_and_raw_is_the_whole_body() -> None:
    body = _body(contact={"id": "c-42", "name": None}, message={"id": "m-2", "text": "", "choice": "track"}, x=1)
    message = api.decode_message(body)
    assert (message.text, message.choice, message.sender_name) == ("track", "track", None)
    assert message.raw == json.loads(body)


# -- outbound --------------------------------------------------------------------------------------


def _reply(key: str = "reply-1", **changes: Any) -> Any:
    return TestApiChannelContract().outbound(key, **changes)


def _openssl_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The digest as a receiver's shell script would compute it."""
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", secret],
        input=timestamp.encode() + b"." + body,
        capture_output=True,
        check=True,
        timeout=30,
    )
    return "sha256=" + out.stdout.decode().split()[-1]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
async def test_a_reply_is_signed_as_openssl_computes_it_over_the_exact_bytes_sent() -> None:
    async with ScriptedVendor() as vendor:
        await make_api(vendor.url + "/r").send(_reply(text="Ihre Bestellung ist unterwegs. 📦"))
    (seen,) = vendor.requests
    stamp = seen.headers["x-flowdesk-timestamp"]
    assert abs(int(stamp) - time.time()) < 60
    assert seen.headers["x-flowdesk-signature"] == _openssl_signature(SECRET, stamp, seen.body)
    # The reference function agrees with openssl too, for str and bytes secrets and int timestamps.
    assert api.sign(SECRET.encode(), int(stamp), seen.body) == seen.headers["x-flowdesk-signature"]


async def test_the_callback_body_says_who_what_and_which_delivery() -> None:
    async with ScriptedVendor() as vendor:
        reply = _reply(
            "conv-contract:7",
            text="Which order?",
            choices=("A-100", "B-200"),
            sender="agent",
            attachments=(Attachment("image", url="https://cdn.example.com/p.png", name="p.png"),),
        )
        await make_api(vendor.url + "/r").send(reply)
    (seen,) = vendor.requests
    assert seen.path == "/r" and seen.headers["content-type"] == "application/json"
    assert seen.headers["idempotency-key"] == "conv-contract:7"
    assert seen.json() == {
        "type": "message",
        "account": "crm",
        "conversation_id": "conv-contract",
        "contact": {"id": "customer-1"},
        "message": {
            "id": "conv-contract:7",
            "text": "Which order?",
            "choices": ["A-100", "B-200"],
            "attachments": [
                {"kind": "image", "url": "https://cdn.example.com/p.png", "name": "p.png", "mime_type": ""}
            ],
            "sender": "agent",
        },
        "at": "2026-12-02T10:00:00+00:00",
    }


async def test_a_receiver_checking_signatures_refuses_a_reply_signed_with_another_secret() -> None:
    with ApiReceiver(SECRET) as receiver:
        with pytest.raises(DeliveryRejected) as rejected:
            await make_api(receiver.url, secret=OTHER_SECRET).send(_reply())
        assert rejected.value.code == "401" and OTHER_SECRET not in str(rejected.value)
        assert receiver.refused == 1 and receiver.messages("customer-1") == []
        receipt = await make_api(receiver.url).send(_reply())
        assert receipt.status == "sent" and receiver.refused == 1
        assert [m["id"] for m in receiver.wait_for("customer-1", 1)] == ["reply-1"]


async def test_an_acknowledged_key_is_not_posted_again_and_the_receivers_id_is_kept() -> None:
    with ApiReceiver(SECRET, answer_ids=True) as receiver:
        channel = make_api(receiver.url)
        first = await channel.send(_reply("k-1"))
        again = await channel.send(_reply("k-1", text="changed on a retry"))
        assert (first.status, first.channel_message_id) == ("sent", "rcv-1")
        assert (again.status, again.channel_message_id) == ("duplicate", "rcv-1")
        assert len(receiver.requests) == 1 and receiver.repeats == {}


async def test_a_failed_attempt_is_retried_until_acknowledged_then_never_again() -> None:
    with ApiReceiver(SECRET) as receiver:
        channel = make_api(receiver.url)
        receiver.inject(fail(503), fail(429, retry_after="3"))
        with pytest.raises(ChannelUnavailable, match="api:crm answered 503"):
            await channel.send(_reply("k-2"))
        with pytest.raises(ChannelThrottled) as throttled:
            await channel.send(_reply("k-2"))
        assert throttled.value.retry_after == 3
        assert (await channel.send(_reply("k-2"))).status == "sent"
        assert (await channel.send(_reply("k-2"))).status == "duplicate"
        assert len(receiver.requests) == 3 and len(receiver.messages("customer-1")) == 1


async def test_a_receiver_refusing_a_reply_fails_it_for_good_and_the_next_one_goes_through() -> None:
    with ApiReceiver(SECRET) as receiver:
        channel = make_api(receiver.url)
        receiver.inject(fail(400))
        with pytest.raises(DeliveryRejected) as rejected:
            await channel.send(_reply("k-bad"))
        assert rejected.value.code == "400"
        assert (await channel.send(_reply("k-next", text="next"))).status == "sent"
        assert receiver.texts("customer-1") == ["next"]


@pytest.mark.parametrize(("status", "said"), [(400, "answered 400"), (404, "answered 404"), (301, "a redirect is not")])
async def test_a_refusal_or_a_redirect_fails_the_reply_for_good_with_the_status_as_its_code(
    status: int, said: str
) -> None:
    async with ScriptedVendor() as vendor:
        vendor.answer(status, {"error": "no"}, {"location": "https://elsewhere.example.com/"})
        with pytest.raises(DeliveryRejected, match=said) as rejected:
            await make_api(vendor.url + "/r?token=receiver-token").send(_reply())
    assert rejected.value.code == str(status)
    assert "receiver-token" not in str(rejected.value)  # the URL may hold the receiver's credentials


async def test_a_reply_whose_answer_was_lost_comes_again_and_the_receiver_drops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The receiver processes the reply but answers after Flowdesk stopped waiting.
    async with httpx.AsyncClient(timeout=0.3) as impatient:
        monkeypatch.setattr(api, "http_client", lambda: impatient)
        with ApiReceiver(SECRET) as receiver:
            channel = make_api(receiver.url)
            receiver.inject(slow(1.0))
            with pytest.raises(ChannelUnavailable, match="did not answer in time"):
                await channel.send(_reply("k-3"))
            assert (await channel.send(_reply("k-3"))).status == "sent"
            assert len(receiver.wait_for("customer-1", 1)) == 1
            assert receiver.repeats == {"k-3": 1}


async def test_a_reply_without_a_recipient_is_rejected_without_being_sent() -> None:
    async with ScriptedVendor() as vendor:
        with pytest.raises(DeliveryRejected, match="no recipient") as rejected:
            await make_api(vendor.url + "/r").send(_reply(recipient=""))
    assert rejected.value.code == "no_recipient" and vendor.requests == []


async def test_the_record_of_acknowledged_keys_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "ACKNOWLEDGED_KEYS_REMEMBERED", 2)
    async with ScriptedVendor() as vendor:
        channel = make_api(vendor.url + "/r")
        for key in ("a", "b", "c"):
            await channel.send(_reply(key))
        assert (await channel.send(_reply("c"))).status == "duplicate"
        assert (await channel.send(_reply("a"))).status == "sent"  # forgotten: the receiver's id check holds
    assert [r.json()["message"]["id"] for r in vendor.requests] == ["a", "b", "c", "a"]


# -- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://crm.example.com/r", "crm.example.com/replies", "https://", "", 42])
def test_a_callback_url_that_is_not_http_is_a_config_error_naming_the_setting(url: Any) -> None:
    with pytest.raises(ConfigError, match=re.escape("channels.api.accounts.crm.callback_url must be an http://")):
        api.create(ChannelConfig("api", "crm", {"secret": SECRET, "callback_url": url}))


def test_a_short_secret_is_a_config_error_that_does_not_repeat_it() -> None:
    with pytest.raises(ConfigError, match=re.escape("channels.api.secret must be at least 16")) as refused:
        api.create(ChannelConfig("api", "default", {"secret": "hunter2", "callback_url": "https://crm.example.com/"}))
    assert "hunter2" not in str(refused.value)


def test_the_registry_builds_each_configured_account() -> None:
    settings = {
        "api": {
            "accounts": {
                "crm": {"secret": "${env:CRM_SECRET}", "callback_url": "https://crm.example.com/flowdesk/replies"},
                "shop": {"secret": "shop-secret-0123456789", "callback_url": "http://shop.internal:8080/hooks"},
            }
        }
    }
    channels: dict[str, Any] = build_channels(settings, environ={"CRM_SECRET": SECRET})
    assert {"api:crm", "api:shop"} <= set(channels)
    assert (channels["api:crm"].account, channels["api:crm"].callback_url) == (
        "crm",
        "https://crm.example.com/flowdesk/replies",
    )
    assert channels["api:shop"].account == "shop"


def test_an_account_without_its_secret_is_left_out_and_named_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="engine.channels.registry")
    settings = {
        "api": {
            "accounts": {
                "crm": {"secret": SECRET, "callback_url": "https://crm.example.com/flowdesk/replies"},
                "shop": {"callback_url": "https://shop.example.com/hooks"},
            }
        }
    }
    channels = build_channels(settings, environ={})
    assert "api:crm" in channels and "api:shop" not in channels
    assert "channels.api.accounts.shop.secret not set" in caplog.text
    assert SECRET not in caplog.text


# -- the documentation's snippets, run as written ---------------------------------------------------


def doc_snippet(name: str) -> str:
    """The fenced block after ``<!-- tested: NAME -->`` in the "The API channel" section of docs/channels.md."""
    section = re.search(r"^## The API channel\n(.*?)(?=^## |\Z)", DOC.read_text("utf-8"), re.DOTALL | re.MULTILINE)
    assert section, 'docs/channels.md has no "## The API channel" section'
    match = re.search(rf"<!-- tested: {name} -->\n```\w+\n(.*?)```", section.group(1), re.DOTALL)
    assert match, f'docs/channels.md, "The API channel", has no block marked <!-- tested: {name} -->'
    return match.group(1)


@pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("curl")), reason="needs openssl and curl")
async def test_the_documented_curl_command_sends_a_message_flowdesk_accepts() -> None:
    async with ScriptedVendor() as flowdesk:
        url = flowdesk.url + "/webhooks/api/crm"
        shell = await asyncio.create_subprocess_exec(
            "bash",
            "-euo",
            "pipefail",
            "-c",
            doc_snippet("sign-and-send"),
            env={"PATH": "/usr/bin:/bin", "FLOWDESK_URL": url, "FLOWDESK_API_SECRET": SECRET},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(shell.communicate(), timeout=30)
    assert shell.returncode == 0, err.decode()
    (seen,) = flowdesk.requests
    assert seen.path == "/webhooks/api/crm"
    request = webhook(seen.body, seen.headers)
    channel = make_api("https://crm.example.com/r")
    channel.verify(request)
    (message,) = channel.decode(request)
    assert isinstance(message, Incoming)
    assert (message.message_id, message.sender, message.sender_name, message.locale) == ("m-1001", "c-42", "Ana", "en")


async def test_the_documented_python_check_accepts_flowdesks_callbacks_and_nothing_else() -> None:
    namespace: dict[str, Any] = {}
    exec(doc_snippet("verify-callback"), namespace)  # our own documentation, run as a reader would
    is_from_flowdesk = namespace["is_from_flowdesk"]
    async with ScriptedVendor() as vendor:
        await make_api(vendor.url + "/r").send(_reply())
    (seen,) = vendor.requests
    stamp, signature = seen.headers["x-flowdesk-timestamp"], seen.headers["x-flowdesk-signature"]
    assert is_from_flowdesk(SECRET.encode(), stamp, signature, seen.body) is True
    assert is_from_flowdesk(OTHER_SECRET.encode(), stamp, signature, seen.body) is False
    assert is_from_flowdesk(SECRET.encode(), stamp, signature, seen.body + b" ") is False
    old = str(int(time.time()) - 600)
    assert is_from_flowdesk(SECRET.encode(), old, api.sign(SECRET, old, seen.body), seen.body) is False
    # And it is the same check as the channel's own: a hand-made digest agrees.
    hand_made = hmac.new(SECRET.encode(), stamp.encode() + b"." + seen.body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={hand_made}"
