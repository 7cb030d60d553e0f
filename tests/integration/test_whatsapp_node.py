"""WhatsApp through a whole node: Meta's URL check, a signed message in, the flow's reply out to Graph.

The node (what ``flowdesk serve`` runs) is configured as an operator would, with
the WhatsApp emulator as its ``api_base``; the emulator also plays Meta calling
the node's webhook. What an operator notices: the URL check passes only with the
verify token; a customer's message gets the flow's answer on their phone; a
forged call is refused and starts nothing; a redelivered message is answered once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.integration.runtime_support import DEADLINE, ECHO_FLOW
from tests.integration.server_support import RunningNode, running_node
from tests.vendors.whatsapp import (
    ACCESS_TOKEN,
    APP_SECRET,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    WhatsAppEmulator,
    button_reply,
    text_message,
)

WHATSAPP_ECHO = ECHO_FLOW.replace("flow: echo\n", "flow: echo\nchannels: [whatsapp]\n", 1)


@pytest.fixture(name="fx_graph")
def fixture_graph() -> AsyncIterator[WhatsAppEmulator]:
    with WhatsAppEmulator() as graph:
        yield graph  # type: ignore[misc]


@pytest.fixture(name="fx_node")
async def fixture_node(
    fx_dev_env: WorkflowEnvironment, fx_graph: WhatsAppEmulator, tmp_path: Path
) -> AsyncIterator[RunningNode]:
    settings = {
        "channels": {
            "whatsapp": {
                "phone_number_id": PHONE_NUMBER_ID,
                "access_token": ACCESS_TOKEN,
                "app_secret": APP_SECRET,
                "verify_token": VERIFY_TOKEN,
                "api_base": fx_graph.url,
            }
        }
    }
    async with running_node(fx_dev_env, tmp_path, flows={"echo.yaml": WHATSAPP_ECHO}, settings=settings) as node:
        yield node


async def test_metas_url_check_passes_only_with_the_verify_token(
    fx_node: RunningNode, fx_graph: WhatsAppEmulator
) -> None:
    url = fx_node.url + "/webhooks/whatsapp"
    ok = await asyncio.to_thread(fx_graph.handshake, url, challenge="8675309")
    assert (ok.status, ok.text) == (200, "8675309")
    wrong = await asyncio.to_thread(fx_graph.handshake, url, token="guessed", challenge="8675309")
    assert wrong.status == 403 and "8675309" not in wrong.text


async def test_a_customers_message_is_answered_on_their_phone_once(
    fx_node: RunningNode, fx_graph: WhatsAppEmulator
) -> None:
    url = fx_node.url + "/webhooks/whatsapp"
    customer = "16505550001"
    body = fx_graph.webhook_body([text_message("hello", sender=customer)], names={customer: "Ana"})
    answered = await asyncio.to_thread(fx_graph.post_webhook, url, body)
    assert answered.status == 200, answered.text
    [reply] = await fx_graph.wait_for_async(customer, 1, timeout=DEADLINE)
    assert (reply.type, reply.text) == ("text", "got hello")
    # Meta delivers the same event again (it did not see our 200): no second answer.
    again = await asyncio.to_thread(fx_graph.post_webhook, url, body)
    assert again.status == 200
    tap = fx_graph.webhook_body([button_reply("Track my order", "Track my order", sender=customer)])
    assert (await asyncio.to_thread(fx_graph.post_webhook, url, tap)).status == 200
    replies = await fx_graph.wait_for_async(customer, 2, timeout=DEADLINE)
    assert [m.text for m in replies] == ["got hello", "got Track my order"]


async def test_a_forged_call_is_refused_and_answers_nobody(fx_node: RunningNode, fx_graph: WhatsAppEmulator) -> None:
    url = fx_node.url + "/webhooks/whatsapp"
    customer = "16505550002"
    body = fx_graph.webhook_body([text_message("hello", sender=customer)])
    forged = await asyncio.to_thread(fx_graph.post_webhook, url, body, signature=fx_graph.signature(body, "guess"))
    assert forged.status == 401
    await asyncio.sleep(1.0)
    assert fx_graph.sent_to(customer) == []


async def test_one_meta_callback_url_serves_every_number_of_the_app(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    # Meta sends all numbers' events of one app to the app's callback URL: whichever
    # account's URL that is, each event is answered from the number it was sent to.
    with WhatsAppEmulator(phone_number_id="2001") as sales, WhatsAppEmulator(phone_number_id="2002") as support:
        shared = {"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN}
        accounts = {
            "sales": {"phone_number_id": "2001", "api_base": sales.url},
            "support": {"phone_number_id": "2002", "api_base": support.url},
        }
        settings = {"channels": {"whatsapp": {**shared, "accounts": accounts}}}
        async with running_node(fx_dev_env, tmp_path, flows={"echo.yaml": WHATSAPP_ECHO}, settings=settings) as node:
            url = node.url + "/webhooks/whatsapp/sales"
            to_support = support.webhook_body([text_message("for support", sender="16505550003")])
            to_sales = sales.webhook_body([text_message("for sales", sender="16505550004")])
            for body in (to_support, to_sales):
                assert (await asyncio.to_thread(sales.post_webhook, url, body)).status == 200
            assert [m.text for m in await support.wait_for_async("16505550003", 1, timeout=DEADLINE)] == [
                "got for support"
            ]
            assert [m.text for m in await sales.wait_for_async("16505550004", 1, timeout=DEADLINE)] == ["got for sales"]
            conversations = await asyncio.to_thread(node.services.store.list_conversations)
            assert sorted(c.channel for c in conversations) == ["whatsapp:sales", "whatsapp:support"]
            assert sales.sent_to("16505550003") == [] and support.sent_to("16505550004") == []
