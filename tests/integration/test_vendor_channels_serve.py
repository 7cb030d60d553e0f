"""Vendor channels end to end, through one real ``flowdesk serve`` and the vendors' emulators.

The node is configured as an operator would: Telegram (default account), WhatsApp
with two phone numbers (accounts ``default`` and ``sales``) and the API channel's
``crm`` account, each pointing at its emulator, secrets from the environment. An
echo flow serves every channel; a sales flow with a higher priority serves only
``whatsapp:sales``. The emulators play the vendors calling the webhooks (signed
as each vendor signs) and take the replies. What is checked is what an operator
or a customer notices: the reply on the customer's phone, the transcript and its
delivery statuses, the answers vendors get, and the metrics.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.vendor_serve_support import DEADLINE, Served, metric_value, serve_vendors, wait_until
from tests.vendors.api_receiver import ApiReceiver, inbound_body, post_inbound, signed_headers
from tests.vendors.telegram import SECRET as TELEGRAM_SECRET
from tests.vendors.telegram import TOKEN as TELEGRAM_TOKEN
from tests.vendors.telegram import TelegramEmulator, TelegramUpdates
from tests.vendors.whatsapp import (
    ACCESS_TOKEN,
    APP_SECRET,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    WhatsAppEmulator,
    status,
    text_message,
)

SALES_PHONE_NUMBER_ID = "209876543210987"
SALES_ACCESS_TOKEN = "EAAJB-sales-access-token"
SALES_APP_SECRET = "sales-app-secret-0123"
API_SECRET = "crm-shared-secret-0123456789abcdef"

ECHO_FLOW = """
flow: echo
channels: ["*"]
steps:
  listen:
    wait: message
  route:
    switch:
      - if: "message.text is matching('^menu$')"
        goto: menu
      - if: "message.text is matching('^order ')"
        goto: order
    default: answer
  answer:
    say: "You said: {{ message.text }}"
    next: listen
  menu:
    ask: "Pick a drink"
    choices: [Tea, Coffee]
    save_as: drink
  picked:
    say: "You picked {{ vars.drink }}"
    next: listen
  order:
    say:
      template: order_update
      params: ["{{ message.text }}"]
      text: "Update on {{ message.text }}"
    next: listen
"""

SALES_FLOW = """
flow: sales
channels: ["whatsapp:sales"]
priority: 10
steps:
  listen:
    wait: message
  answer:
    say: "Sales desk here. You said: {{ message.text }}"
    next: listen
"""


class Vendors:
    """The emulators one node talks to, and the node."""

    def __init__(self, served: Served, telegram: TelegramEmulator, graph: WhatsAppEmulator, sales: WhatsAppEmulator):
        self.served = served
        self.telegram = telegram
        self.graph = graph
        self.sales = sales
        self.receiver: ApiReceiver


@pytest.fixture(name="fx_vendors", scope="module")
def fixture_vendors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vendors]:
    root: Path = tmp_path_factory.mktemp("vendor-serve")
    with (
        TelegramEmulator() as telegram,
        WhatsAppEmulator() as graph,
        WhatsAppEmulator(
            phone_number_id=SALES_PHONE_NUMBER_ID, access_token=SALES_ACCESS_TOKEN, app_secret=SALES_APP_SECRET
        ) as sales,
        ApiReceiver(API_SECRET) as receiver,
    ):
        channels = {
            "telegram": {
                "bot_token": "${env:TELEGRAM_BOT_TOKEN}",
                "secret_token": "${env:TELEGRAM_WEBHOOK_SECRET}",
                "api_base": telegram.api_base,
            },
            "whatsapp": {
                "api_base": graph.url,
                "verify_token": "${env:WHATSAPP_VERIFY_TOKEN}",
                "accounts": {
                    "default": {
                        "phone_number_id": PHONE_NUMBER_ID,
                        "access_token": "${env:WHATSAPP_TOKEN}",
                        "app_secret": "${env:WHATSAPP_APP_SECRET}",
                    },
                    "sales": {
                        "phone_number_id": SALES_PHONE_NUMBER_ID,
                        "access_token": "${env:WHATSAPP_SALES_TOKEN}",
                        "app_secret": "${env:WHATSAPP_SALES_APP_SECRET}",
                        "api_base": sales.url,
                    },
                },
            },
            "api": {"accounts": {"crm": {"secret": "${env:CRM_API_SECRET}", "callback_url": receiver.url}}},
        }
        secrets = {
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "WHATSAPP_TOKEN": ACCESS_TOKEN,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_SALES_TOKEN": SALES_ACCESS_TOKEN,
            "WHATSAPP_SALES_APP_SECRET": SALES_APP_SECRET,
            "CRM_API_SECRET": API_SECRET,
        }
        flows = {"echo.yaml": ECHO_FLOW, "sales.yaml": SALES_FLOW}
        with serve_vendors(root, channels, flows, secrets) as served:
            vendors = Vendors(served, telegram, graph, sales)
            vendors.receiver = receiver
            yield vendors


def _unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


def _chat_id() -> int:
    return int(uuid.uuid4().int % 10**9) + 10**9


def _wa_id() -> str:
    return "1555" + str(uuid.uuid4().int % 10**8).zfill(8)


def _out(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["direction"] == "out"]


def _ins(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["direction"] == "in"]


def _reply_with(messages: list[dict[str, Any]], text: str, state: str) -> bool:
    return any(m["text"] == text and m["status"] == state for m in _out(messages))


def _status_is(text: str, state: str) -> Callable[[list[dict[str, Any]]], bool]:
    """Whether a transcript shows the reply ``text`` with ``state``."""
    return lambda messages: _reply_with(messages, text, state)


# -- 1. a message in, the flow's reply out, per channel ------------------------------------------


def test_telegram_message_is_answered_in_the_chat_and_the_transcript(fx_vendors: Vendors) -> None:
    served, telegram = fx_vendors.served, fx_vendors.telegram
    chat, text = _chat_id(), _unique("hello")
    updates = TelegramUpdates(first_update_id=1_000_000)
    # Telegram takes its time with the reply: the webhook has answered long before.
    telegram.slow_next(5, method="sendMessage")
    posted = updates.post(served.webhook("telegram"), updates.text(chat, text))
    assert posted.status == 200
    assert telegram.texts(chat) == []  # answered 200 before the reply went out, not after
    [reply] = telegram.wait_for(chat, 1, timeout=DEADLINE)
    assert reply.text == f"You said: {text}"
    conversation = served.conversation_of("telegram", text)
    messages = served.wait_transcript(
        conversation, lambda m: _reply_with(m, f"You said: {text}", "sent"), "the reply logged as sent"
    )
    assert [m["text"] for m in _ins(messages)] == [text]


@pytest.mark.parametrize(
    ("account", "greeting"), [("", "You said: "), ("sales", "Sales desk here. You said: ")], ids=["default", "sales"]
)
def test_whatsapp_message_is_answered_by_its_accounts_flow_and_statuses_move_the_reply(
    fx_vendors: Vendors, account: str, greeting: str
) -> None:
    served = fx_vendors.served
    graph = fx_vendors.sales if account else fx_vendors.graph
    other = fx_vendors.graph if account else fx_vendors.sales
    customer, text = _wa_id(), _unique("hello")
    url = served.webhook("whatsapp", account)
    posted = graph.post_webhook(url, graph.webhook_body([text_message(text, sender=customer)]))
    assert posted.status == 200, posted.text
    [reply] = graph.wait_for(customer, 1, timeout=DEADLINE)
    assert (reply.type, reply.text) == ("text", greeting + text)
    assert other.sent_to(customer) == []  # the reply went out from the number the customer wrote to
    channel = "whatsapp:sales" if account else "whatsapp"
    conversation = served.conversation_of(channel, text)
    served.wait_transcript(conversation, lambda m: _reply_with(m, reply.text, "sent"), "the reply logged as sent")
    for state in ("delivered", "read"):
        answered = graph.post_webhook(
            url, graph.webhook_body(statuses=[status(reply.wamid, state, recipient=customer)])
        )
        assert answered.status == 200, answered.text
        moved = _status_is(reply.text, state)
        served.wait_transcript(conversation, moved, f"the reply's status to become {state}")


def test_api_message_is_answered_at_the_callback_and_in_the_transcript(fx_vendors: Vendors) -> None:
    served, receiver = fx_vendors.served, fx_vendors.receiver
    contact, text = f"crm-{uuid.uuid4().hex[:8]}", _unique("hello")
    posted = post_inbound(served.webhook("api", "crm"), API_SECRET, inbound_body(contact, uuid.uuid4().hex, text))
    assert posted.status == 200, posted.body
    [reply] = receiver.wait_for(contact, 1, timeout=DEADLINE)
    assert reply["text"] == f"You said: {text}"
    conversation = served.conversation_of("api:crm", text)
    served.wait_transcript(
        conversation, lambda m: _reply_with(m, f"You said: {text}", "sent"), "the reply logged as sent"
    )


# -- 2. Telegram buttons -------------------------------------------------------------------------


def test_telegram_button_press_is_the_asks_choice(fx_vendors: Vendors) -> None:
    served, telegram = fx_vendors.served, fx_vendors.telegram
    updates = TelegramUpdates(first_update_id=2_000_000)
    chat = _chat_id()
    assert updates.post(served.webhook("telegram"), updates.text(chat, "menu")).status == 200
    [question] = telegram.wait_for(chat, 1, timeout=DEADLINE)
    assert question.text == "Pick a drink"
    assert question.buttons == ["Tea", "Coffee"]  # an inline keyboard, one button per choice
    press = updates.press(question, "Coffee")
    assert updates.post(served.webhook("telegram"), press).status == 200
    messages = telegram.wait_for(chat, 2, timeout=DEADLINE)
    assert messages[1].text == "You picked Coffee"
    query_id = press["callback_query"]["id"]
    wait_until(
        lambda: [c for c in telegram.answered_callbacks if c.get("callback_query_id") == query_id],
        "answerCallbackQuery for the press",
    )


# -- 3. bad signatures ---------------------------------------------------------------------------


def _bad_requests(vendors: Vendors, marker: str) -> list[tuple[str, str, bytes, dict[str, str]]]:
    """(what, url, body, headers) of every forged, missing, altered or stale request, one per route."""
    served = vendors.served
    cases: list[tuple[str, str, bytes, dict[str, str]]] = []
    update = json.dumps(TelegramUpdates(first_update_id=3_000_000).text(_chat_id(), marker)).encode()
    json_type = {"content-type": "application/json"}
    tg = served.webhook("telegram")
    cases += [
        ("telegram forged", tg, update, json_type | {"x-telegram-bot-api-secret-token": "guessed_secret_123"}),
        ("telegram missing", tg, update, json_type),
        ("telegram empty", tg, update, json_type | {"x-telegram-bot-api-secret-token": ""}),
    ]
    for account, graph in (("", vendors.graph), ("sales", vendors.sales)):
        url, name = served.webhook("whatsapp", account), f"whatsapp:{account or 'default'}"
        body = graph.webhook_body([text_message(marker, sender=_wa_id())])
        other = graph.webhook_body([text_message(marker + " altered", sender=_wa_id())])
        cases += [
            (f"{name} forged", url, body, json_type | {"x-hub-signature-256": graph.signature(body, "guess")}),
            (f"{name} missing", url, body, json_type),
            (f"{name} altered", url, other, json_type | {"x-hub-signature-256": graph.signature(body)}),
        ]
    # Each WhatsApp number's secret signs only its own webhook.
    body = vendors.sales.webhook_body([text_message(marker, sender=_wa_id())])
    cases.append(
        (
            "whatsapp other account's secret",
            served.webhook("whatsapp"),
            body,
            json_type | {"x-hub-signature-256": vendors.sales.signature(body)},
        )
    )
    api = served.webhook("api", "crm")
    body = inbound_body("crm-forged", uuid.uuid4().hex, marker)
    altered = inbound_body("crm-forged", uuid.uuid4().hex, marker + " altered")
    cases += [
        ("api forged", api, body, signed_headers("not-the-secret-0123456789", body)),
        ("api missing", api, body, json_type),
        ("api altered", api, altered, signed_headers(API_SECRET, body)),
        ("api stale", api, body, signed_headers(API_SECRET, body, timestamp=int(time.time()) - 600)),
        ("api ahead", api, body, signed_headers(API_SECRET, body, timestamp=int(time.time()) + 600)),
    ]
    return cases


def test_bad_signatures_are_refused_and_store_nothing(fx_vendors: Vendors) -> None:
    served = fx_vendors.served
    marker = _unique("forged")
    before_conversations = {c["id"] for c in served.conversations()}
    before = served.metrics()
    cases = _bad_requests(fx_vendors, marker)
    answers = {
        what: httpx.post(url, content=body, headers=headers, timeout=DEADLINE) for what, url, body, headers in cases
    }
    assert {what: a.status_code for what, a in answers.items()} == {what: 401 for what in answers}
    after = served.metrics()
    for address, count in (("telegram", 3), ("whatsapp", 4), ("whatsapp:sales", 3), ("api:crm", 5)):
        counted = metric_value(after, "flowdesk_webhook_rejected_total", channel=address, reason="signature")
        was = metric_value(before, "flowdesk_webhook_rejected_total", channel=address, reason="signature")
        assert counted - was == count, address
    assert {c["id"] for c in served.conversations()} == before_conversations
    assert marker.split()[1] not in served.log_text()  # the refused text was never logged as a message
    for emulator, name in ((fx_vendors.graph, "default"), (fx_vendors.sales, "sales")):
        assert not any(marker in m.text for sent in emulator.messages.values() for m in sent), name
    assert fx_vendors.receiver.messages("crm-forged") == []


# -- 4. a redelivery storm -----------------------------------------------------------------------


def test_a_thousand_redeliveries_are_one_message_and_one_reply(fx_vendors: Vendors) -> None:
    served, telegram = fx_vendors.served, fx_vendors.telegram
    chat, text = _chat_id(), _unique("storm")
    update = TelegramUpdates(first_update_id=4_000_000).text(chat, text)
    body = json.dumps(update).encode()
    headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": TELEGRAM_SECRET}
    url = served.webhook("telegram")

    def post_many(count: int) -> list[int]:
        with httpx.Client(timeout=DEADLINE) as client:
            return [client.post(url, content=body, headers=headers).status_code for _ in range(count)]

    before = served.metrics()
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [s for batch in pool.map(post_many, [125] * 8) for s in batch]
    assert len(statuses) == 1000
    assert {s for s in statuses if not 200 <= s < 300} == set()
    conversation = served.conversation_of("telegram", text)
    messages = served.wait_transcript(
        conversation, lambda m: _reply_with(m, f"You said: {text}", "sent"), "the reply logged as sent"
    )
    assert [m["text"] for m in _ins(messages)] == [text]
    assert [m["text"] for m in _out(messages)] == [f"You said: {text}"]
    assert telegram.texts(chat) == [f"You said: {text}"]
    # The operator's dashboard counts one message in and one reply out (docs/metrics.md:
    # "a redelivered message counts once").
    after = served.metrics()
    names = ("flowdesk_messages_in_total", "flowdesk_messages_out_total")
    grew = {n: metric_value(after, n, channel="telegram") - metric_value(before, n, channel="telegram") for n in names}
    assert grew == dict.fromkeys(names, 1)


# -- 5. vendor faults ----------------------------------------------------------------------------


def test_a_reply_through_429_and_500_arrives_exactly_once(fx_vendors: Vendors) -> None:
    served, telegram = fx_vendors.served, fx_vendors.telegram
    updates = TelegramUpdates(first_update_id=5_000_000)
    chat, text = _chat_id(), _unique("bumpy")
    telegram.fail_next(429, retry_after=1, method="sendMessage")
    telegram.fail_next(500, method="sendMessage")
    assert updates.post(served.webhook("telegram"), updates.text(chat, text)).status == 200
    conversation = served.conversation_of("telegram", text)
    messages = served.wait_transcript(
        conversation, lambda m: _reply_with(m, f"You said: {text}", "sent"), "the reply logged as sent"
    )
    assert [m["text"] for m in _out(messages)] == [f"You said: {text}"]
    assert telegram.texts(chat) == [f"You said: {text}"]
    tries = [c for c in telegram.calls_of("sendMessage") if str(c.params.get("chat_id")) == str(chat)]
    assert len(tries) == 3  # the 429, the 500, the one that went through
    # Telegram said "retry after 1": the next try waited that long (a lower bound, not a speed).
    assert tries[1].at - tries[0].at >= 0.95


def test_a_reply_the_vendor_refuses_is_failed_with_the_vendors_reason(fx_vendors: Vendors) -> None:
    served, telegram = fx_vendors.served, fx_vendors.telegram
    updates = TelegramUpdates(first_update_id=5_100_000)
    chat, text = _chat_id(), _unique("nowhere")
    before = metric_value(served.metrics(), "flowdesk_delivery_failures_total", channel="telegram", code="400")
    telegram.fail_next(400, method="sendMessage")
    assert updates.post(served.webhook("telegram"), updates.text(chat, text)).status == 200
    conversation = served.conversation_of("telegram", text)
    messages = served.wait_transcript(
        conversation, lambda m: _reply_with(m, f"You said: {text}", "failed"), "the reply logged as failed"
    )
    [reply] = _out(messages)
    assert "chat not found" in reply["detail"]
    assert telegram.texts(chat) == []
    after = metric_value(served.metrics(), "flowdesk_delivery_failures_total", channel="telegram", code="400")
    assert after - before == 1


# -- 6. WhatsApp's 24 h window -------------------------------------------------------------------


def _late_message(text: str, customer: str) -> dict[str, Any]:
    message = text_message(text, sender=customer)
    message["timestamp"] = str(int(time.time()) - 25 * 3600)
    return message


def test_after_24_hours_free_text_is_not_sent_and_the_template_is(fx_vendors: Vendors) -> None:
    served, graph = fx_vendors.served, fx_vendors.graph
    url = served.webhook("whatsapp")
    customer, text = _wa_id(), _unique("late")
    assert graph.post_webhook(url, graph.webhook_body([_late_message(text, customer)])).status == 200
    conversation = served.conversation_of("whatsapp", text)
    messages = served.wait_transcript(
        conversation, lambda m: _reply_with(m, f"You said: {text}", "failed"), "the free-form reply failed"
    )
    [refused] = _out(messages)
    assert "window closed" in refused["detail"]
    assert graph.sent_to(customer) == []

    order = _unique("order")
    assert graph.post_webhook(url, graph.webhook_body([_late_message(order, customer)])).status == 200
    messages = served.wait_transcript(
        conversation,
        lambda m: len(_out(m)) >= 2,
        "the order update's delivery outcome",
    )
    assert [(r["text"], r["status"]) for r in _out(messages)[1:]] == [(f"Update on {order}", "sent")], messages
    [sent] = graph.sent_to(customer)
    assert sent.type == "template" and sent.template["name"] == "order_update"
    params = [p.get("text") for c in sent.template.get("components", []) for p in c.get("parameters", [])]
    assert params == [order]


# -- 7. what a webhook refuses -------------------------------------------------------------------


def test_webhook_refusals_are_4xx_with_the_reason(fx_vendors: Vendors) -> None:
    served, graph = fx_vendors.served, fx_vendors.graph
    tg_headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": TELEGRAM_SECRET}
    huge = b'{"update_id": 1, "pad": "' + b"x" * (1024 * 1024 + 16) + b'"}'
    too_large = {
        "telegram": httpx.post(
            served.webhook("telegram"), content=huge, headers=tg_headers, timeout=DEADLINE
        ).status_code,
        "whatsapp": graph.post_webhook(served.webhook("whatsapp"), huge).status,
        "api:crm": post_inbound(served.webhook("api", "crm"), API_SECRET, huge).status,
    }
    assert too_large == dict.fromkeys(too_large, 413)
    got = httpx.get(served.webhook("telegram"), timeout=DEADLINE)
    assert got.status_code == 405
    for account in ("", "sales"):  # Meta's URL check, on each number's webhook
        checked = graph.handshake(served.webhook("whatsapp", account), challenge="8675309")
        assert (checked.status, checked.text) == (200, "8675309"), account
        wrong = graph.handshake(served.webhook("whatsapp", account), token="guessed", challenge="8675309")
        assert wrong.status == 403 and "8675309" not in wrong.text, account
    for path in ("/webhooks/nochannel", "/webhooks/whatsapp/nosuchaccount", "/webhooks/api", "/webhooks/telegram/x"):
        answer = httpx.post(served.url + path, content=b"{}", headers=tg_headers, timeout=DEADLINE)
        assert answer.status_code == 404, path
    malformed: dict[str, httpx.Response] = {
        "telegram not json": httpx.post(served.webhook("telegram"), content=b"{nope", headers=tg_headers),
        "telegram a list": httpx.post(served.webhook("telegram"), content=b"[1, 2]", headers=tg_headers),
    }
    for what, response in malformed.items():
        assert response.status_code == 400, (what, response.text)
        assert response.json()["detail"], what
    wa = graph.post_webhook(served.webhook("whatsapp"), b"{nope")
    assert wa.status == 400 and json.loads(wa.text)["detail"], wa.text
    api = post_inbound(served.webhook("api", "crm"), API_SECRET, b'{"contact": {}}')
    assert api.status == 400 and json.loads(api.body)["detail"], api.body


# -- 8. fuzz ---------------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
_KEYS = st.sampled_from(["update_id", "message", "callback_query", "edited_message", "chat", "from", "text", "data"])
_TELEGRAM = st.one_of(
    _JSON,
    st.dictionaries(_KEYS, _JSON, max_size=4),
    st.fixed_dictionaries(
        {"update_id": st.integers(min_value=9_000_000, max_value=9_999_999) | _JSON},
        optional={"message": st.dictionaries(_KEYS, _JSON, max_size=5), "callback_query": _JSON},
    ),
)
_WA_KEYS = st.sampled_from(["object", "entry", "changes", "value", "messages", "statuses", "metadata", "from", "id"])
_WHATSAPP = st.one_of(
    _JSON,
    st.dictionaries(_WA_KEYS, _JSON, max_size=4),
    st.fixed_dictionaries(
        {"object": st.just("whatsapp_business_account") | _JSON},
        optional={"entry": st.lists(st.dictionaries(_WA_KEYS, _JSON, max_size=3), max_size=2)},
    ),
)


@pytest.fixture(name="fx_log_start", scope="module")
def fixture_log_start(fx_vendors: Vendors) -> int:
    """Where the server log stood when the fuzzing began (its own lines are checked)."""
    return len(fx_vendors.served.log_text())


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(telegram=_TELEGRAM, whatsapp=_WHATSAPP)
def test_fuzzed_signed_bodies_never_get_a_5xx(
    fx_vendors: Vendors, fx_log_start: int, telegram: Any, whatsapp: Any
) -> None:
    served, graph = fx_vendors.served, fx_vendors.graph
    tg_headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": TELEGRAM_SECRET}
    tg = httpx.post(served.webhook("telegram"), content=json.dumps(telegram).encode(), headers=tg_headers)
    assert tg.status_code < 500, (telegram, tg.text)
    wa = graph.post_webhook(served.webhook("whatsapp"), json.dumps(whatsapp).encode())
    assert wa.status < 500, (whatsapp, wa.text)
    written = served.log_text()[fx_log_start:]
    assert "Traceback" not in written, written[-4000:]


def test_the_server_log_has_no_traceback(fx_vendors: Vendors) -> None:
    """Every fault above is one the vendors cause every day: an operator's log names it in a line, no traceback."""
    output = fx_vendors.served.log_text()
    at = output.find("Traceback")
    assert at < 0, output[max(0, at - 1500) : at + 2500]
