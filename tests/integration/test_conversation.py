"""Conversations on the real Temporal dev server: what a customer, an agent and an operator see."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from engine.runtime.client import AgentActionInvalid, AgentActionRefused
from engine.runtime.types import AgentAction, ConversationInput, InboundMessage, workflow_id
from engine.runtime.workflow import ConversationWorkflow
from tests.integration.runtime_support import (
    CHANNEL,
    DEADLINE,
    ECHO_FLOW,
    Runtime,
    ShopServer,
    history_text,
    running_conversations,
    scheduled_activities,
)

SHOP_FLOW = """
flow: shop
vars: {{ shop: "{shop}", order_id: "" }}
ai:
  bot: {{ providers: [{{ use: echo }}] }}
steps:
  first:
    wait: message
  greet:
    say: Hello! I'm the test shop.
  answer:
    ai: bot
    on_error: broken
  order:
    ask: What's your order number?
    expect: "(answer | digits) is matching('^[0-9]{{6}}$')"
    retry_prompt: Six digits, please.
    max_attempts: 3
    on_fail: broken
    set: {{ order_id: "answer | digits" }}
  lookup:
    http:
      url: "{{{{ vars.shop }}}}/orders/{{{{ vars.order_id }}}}"
      headers:
        Authorization: "Bearer {{{{ secret('SHOP_TOKEN') }}}}"
    save_as: order
    on_error: not_found
  found:
    say: "Order {{{{ vars.order.id }}}} is {{{{ vars.order.status }}}}."
  listen:
    wait: message
  bye:
    say: Bye!
    end: resolved
  not_found:
    say: "No order {{{{ vars.order_id }}}}."
    next: listen
  broken:
    say: Something went wrong.
    end: failed
"""

HANDOFF_FLOW = """
flow: desk
steps:
  listen:
    wait: message
  route:
    switch:
      - if: "message.text is matching('(?i)human')"
        goto: human
    default: reply
  reply:
    say: "bot: {{ message.text }}"
    next: listen
  human:
    say: Connecting you with a colleague...
    handoff: { queue: support }
    next: back
  back:
    say: Thanks for your patience!
    next: listen
"""


@pytest.fixture(name="fx_shop")
def fixture_shop() -> Iterator[ShopServer]:
    shop = ShopServer(orders={"123456": {"id": "123456", "status": "shipped"}}).start()
    yield shop
    shop.stop()


def _conversation() -> str:
    return f"c-{uuid4()}"


async def test_a_full_conversation_keeps_the_secret_out_of_history_and_logs(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path, fx_shop: ShopServer
) -> None:
    token = f"tok-{uuid4().hex}"
    conv = _conversation()
    secrets = {"SHOP_TOKEN": token}.get
    async with running_conversations(
        fx_dev_env.client, fx_task_queue, tmp_path, [SHOP_FLOW.format(shop=fx_shop.url)], secrets=secrets
    ) as rt:
        ids = [f"m{i}-{uuid4()}" for i in range(5)]
        await rt.send(conv, "how long is delivery?", message_id=ids[0])
        assert await rt.channel.wait_texts(conv, 3) == [
            "Hello! I'm the test shop.",
            "how long is delivery?",  # the echo provider answers with the customer's text
            "What's your order number?",
        ]
        await rt.send(conv, "abc", message_id=ids[1])
        assert (await rt.channel.wait_texts(conv, 4))[3] == "Six digits, please."
        await rt.send(conv, "#123-456", message_id=ids[2])
        assert (await rt.channel.wait_texts(conv, 5))[4] == "Order 123456 is shipped."
        await rt.send(conv, "thanks", message_id=ids[3])
        assert (await rt.channel.wait_texts(conv, 6))[5] == "Bye!"
        assert rt.channel.texts(conv) == [
            "Hello! I'm the test shop.",
            "how long is delivery?",
            "What's your order number?",
            "Six digits, please.",
            "Order 123456 is shipped.",
            "Bye!",
        ]
        result = await asyncio.wait_for(rt.handle(conv).result(), DEADLINE)
        assert result["status"] == "resolved"

        # the shop saw the secret; nothing Temporal or the log keep contains it
        assert [r.path for r in fx_shop.requests] == ["/orders/123456"]
        assert fx_shop.requests[0].headers["Authorization"] == f"Bearer {token}"
        history = await history_text(rt.handle(conv))
        assert "SHOP_TOKEN" in history  # the marker is there, so this is the right history ...
        assert token not in history  # ... and the value is not
        for path in (tmp_path / "messages").iterdir():
            assert token not in path.read_text(encoding="utf-8")

        # once the conversation has ended, its log holds every message in and out, with its status
        inbound = [(e.message_id, e.text, e.status) for e in rt.entries(conv, "in")]
        assert inbound == [
            (ids[0], "how long is delivery?", "received"),
            (ids[1], "abc", "received"),
            (ids[2], "#123-456", "received"),
            (ids[3], "thanks", "received"),
        ]
        outbound = [(e.message_id, e.text, e.status, e.sender) for e in rt.entries(conv, "out")]
        assert outbound == [(key, text, "sent", "bot") for key, text in rt.channel.deliveries(conv)]


async def test_an_http_error_takes_the_error_path_and_the_conversation_goes_on(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path, fx_shop: ShopServer
) -> None:
    conv = _conversation()
    source = SHOP_FLOW.format(shop=fx_shop.url)
    async with running_conversations(
        fx_dev_env.client, fx_task_queue, tmp_path, [source], secrets={"SHOP_TOKEN": "t"}.get
    ) as rt:
        await rt.send(conv, "hi")
        await rt.channel.wait_texts(conv, 3)
        await rt.send(conv, "654321")
        assert (await rt.channel.wait_texts(conv, 4))[3] == "No order 654321."
        await rt.wait_step(conv, "listen")
        await rt.send(conv, "ok")
        assert (await rt.channel.wait_texts(conv, 5))[4] == "Bye!"


async def test_a_redelivered_message_is_interpreted_once(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [ECHO_FLOW]) as rt:
        conv = _conversation()
        first = await rt.send(conv, "one", message_id="m-1")
        # Temporal itself answers a repeated update id with the first outcome
        again = await rt.send(conv, "one", message_id="m-1")
        assert again == first

        # the same webhook delivered twice at once, to a conversation that does not exist yet
        fresh = _conversation()
        both = await asyncio.gather(*(rt.send(fresh, "hello", message_id="m-9") for _ in range(2)))
        assert {a.message_id for a in both} == {"m-9"}

        await rt.send(conv, "two", message_id="m-2")
        await rt.send(fresh, "later", message_id="m-10")
        assert await rt.channel.wait_texts(conv, 2) == ["got one", "got two"]
        assert await rt.channel.wait_texts(fresh, 2) == ["got hello", "got later"]
        await rt.wait_step(fresh, "listen")
        assert rt.channel.texts(conv) == ["got one", "got two"]
        assert rt.channel.texts(fresh) == ["got hello", "got later"]
        assert [e.message_id for e in await rt.wait_entries(fresh, "in", 2)] == ["m-9", "m-10"]


async def test_a_malformed_message_is_rejected_without_touching_history(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [ECHO_FLOW]) as rt:
        conv = _conversation()
        await rt.send(conv, "hello")
        await rt.channel.wait_texts(conv, 1)
        before = await history_text(rt.handle(conv))

        with pytest.raises(WorkflowUpdateFailedError) as caught:
            await rt.send(conv, "no id", message_id="")
        assert "needs an id" in str(caught.value.cause)
        huge = "x" * 29_990 + "TOO-LONG-MARK"
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            await rt.send(conv, huge)
        assert "longer than 20000 characters" in str(caught.value.cause)

        await rt.send(conv, "still here")
        assert await rt.channel.wait_texts(conv, 2) == ["got hello", "got still here"]
        after = await history_text(rt.handle(conv))
        assert "TOO-LONG-MARK" not in after and "no id" not in after
        assert len(after) > len(before)  # the good message is there
        assert [e.text for e in await rt.wait_entries(conv, "in", 2)] == ["hello", "still here"]


async def test_an_agent_takes_over_replies_and_resolves(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [HANDOFF_FLOW]) as rt:
        conv = _conversation()
        await rt.send(conv, "hello")
        assert await rt.channel.wait_texts(conv, 1) == ["bot: hello"]

        # not handed off: the agent console's action is refused, and says why
        with pytest.raises(AgentActionRefused) as refused:
            await rt.conversations.agent(conv, AgentAction("accept", "anna"))
        assert "not handed off" in str(refused.value)

        await rt.send(conv, "I want a human")
        assert (await rt.channel.wait_texts(conv, 2))[1] == "Connecting you with a colleague..."
        await rt.wait_step(conv, "human", waiting_for="agent")
        await rt.conversations.agent(conv, AgentAction("accept", "anna", name="Anna"))
        await rt.send(conv, "are you there?")  # goes to the agent: the bot stays quiet
        await rt.conversations.agent(conv, AgentAction("reply", "anna", text="Hi, Anna here.", name="Anna"))
        assert (await rt.channel.wait_texts(conv, 4))[3] == "Hi, Anna here."
        await rt.conversations.agent(conv, AgentAction("resolve", "anna"))
        assert (await rt.channel.wait_texts(conv, 5))[4] == "Thanks for your patience!"
        await rt.wait_step(conv, "listen")
        assert rt.channel.texts(conv) == [
            "bot: hello",
            "Connecting you with a colleague...",
            "Anna joined the conversation.",
            "Hi, Anna here.",
            "Thanks for your patience!",
        ]
        senders = [m.sender for m in rt.channel.sent if m.conversation_id == conv]
        assert senders == ["bot", "bot", "system", "agent:anna", "bot"]
        with pytest.raises(AgentActionRefused) as refused:
            await rt.conversations.agent(conv, AgentAction("reply", "anna", text="one more"))
        assert "not handed off" in str(refused.value)


async def test_an_agent_transfers_a_hand_off_to_another_queue_where_it_is_taken(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [HANDOFF_FLOW]) as rt:
        conv = _conversation()
        await rt.send(conv, "I want a human")
        await rt.wait_step(conv, "human", waiting_for="agent")
        with pytest.raises(AgentActionInvalid) as invalid:
            await rt.conversations.agent(conv, AgentAction("transfer", "anna"))
        assert "needs a queue" in str(invalid.value)

        accepted = await rt.conversations.agent(conv, AgentAction("transfer", "anna", queue="billing", reason="refund"))
        assert accepted.accepted
        # the agent console learns from the log that the hand-off now waits on billing
        events = [(e.text, e.status) for e in await rt.wait_entries(conv, "event", 2)]
        assert events == [("support", "handoff"), ("billing", "handoff")]
        assert (await rt.step(conv))["status"] == "handoff"  # still handed off, on the other queue

        await rt.conversations.agent(conv, AgentAction("accept", "ben"))
        await rt.conversations.agent(conv, AgentAction("reply", "ben", text="Ben from billing here."))
        await rt.conversations.agent(conv, AgentAction("resolve", "ben"))
        assert (await rt.channel.wait_texts(conv, 4))[1:] == [
            "ben joined the conversation.",
            "Ben from billing here.",
            "Thanks for your patience!",
        ]
        await rt.wait_step(conv, "listen")
        # a new conversation takes agent actions as interpreter events, the claim decided by the handler
        assert "agent-claims" in await history_text(rt.handle(conv))


async def test_closing_a_handed_off_conversation_withdraws_it_from_the_queue(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [HANDOFF_FLOW]) as rt:
        conv = _conversation()
        await rt.send(conv, "human please")
        await rt.wait_step(conv, "human", waiting_for="agent")
        await rt.wait_entries(conv, "event", 1)
        await rt.conversations.close(conv, "abandoned")
        assert (await asyncio.wait_for(rt.handle(conv).result(), DEADLINE))["status"] == "abandoned"
        # the agent console learns from the log that nobody needs to take it any more
        events = [(e.text, e.status) for e in rt.entries(conv, "event")]
        # ...and the store, that the conversation is over.
        assert events == [("support", "handoff"), ("support", "handoff_cancelled"), ("abandoned", "ended")]


async def test_close_ends_the_conversation_with_the_given_status(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [ECHO_FLOW]) as rt:
        conv = _conversation()
        await rt.send(conv, "hello")
        await rt.wait_step(conv, "listen")
        await rt.conversations.close(conv, "spam")
        result = await asyncio.wait_for(rt.handle(conv).result(), DEADLINE)
        assert result["status"] == "spam"
        assert (await rt.handle(conv).describe()).status == WorkflowExecutionStatus.COMPLETED
        assert (await rt.step(conv))["end_status"] == "spam"


async def test_a_rejected_delivery_is_recorded_failed_and_the_conversation_goes_on(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [ECHO_FLOW]) as rt:
        conv = _conversation()
        rt.channel.reject.add("blocked")
        await rt.send(conv, "blocked")
        await rt.send(conv, "fine")
        assert await rt.channel.wait_texts(conv, 1) == ["got fine"]
        outcomes = [(e.text, e.status) for e in await rt.wait_entries(conv, "out", 2)]
        assert outcomes == [("got blocked", "failed"), ("got fine", "sent")]
        failed = next(e for e in rt.entries(conv) if e.status == "failed")
        assert "recipient blocked the bot" in failed.detail
        assert rt.channel.attempts[failed.message_id] == 1  # permanent: not retried


async def _deliver_activities(rt: Runtime, conv: str) -> int:
    """How many ``flowdesk.deliver`` activities the conversation's history scheduled."""
    return len(scheduled_activities(await rt.handle(conv).fetch_history(), "flowdesk.deliver"))


@pytest.mark.parametrize("in_task", [True, False], ids=["in-task", "activity"])
async def test_a_reply_goes_out_inside_the_workflow_task_only_when_its_channel_says_so(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path, in_task: bool
) -> None:
    # Web chat on a single node says so (its worker holds the sockets); a vendor's
    # channel does not, and its replies are regular activities with their retries.
    async with running_conversations(
        fx_dev_env.client, fx_task_queue, tmp_path, [ECHO_FLOW], reply_in_task=in_task
    ) as rt:
        conv = _conversation()
        for i in range(3):
            await rt.send(conv, f"hi {i}")
            await rt.channel.wait_texts(conv, i + 1)
        await rt.wait_step(conv, "listen")
        assert rt.channel.texts(conv) == ["got hi 0", "got hi 1", "got hi 2"]
        assert [e.status for e in await rt.wait_entries(conv, "out", 3)] == ["sent"] * 3
        assert await _deliver_activities(rt, conv) == (0 if in_task else 3)


async def test_a_transient_delivery_failure_is_retried_and_delivered_once(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [ECHO_FLOW]) as rt:
        conv = _conversation()
        # Two attempts inside the workflow task, a third as the regular activity that
        # takes over, and the fourth (the activity's retry) gets through.
        rt.channel.flaky["wobbly"] = 3
        await rt.send(conv, "wobbly")
        assert await rt.channel.wait_texts(conv, 1) == ["got wobbly"]
        key = rt.channel.deliveries(conv)[0][0]
        assert rt.channel.attempts[key] == 4
        assert [e.status for e in await rt.wait_entries(conv, "out", 1)] == ["sent"]
        assert await _deliver_activities(rt, conv) == 1


REVISED_V1 = """
flow: revised
steps:
  first:
    wait: message
  route:
    switch:
      - if: "message.text == 'old'"
        goto: old_path
    default: greet
  greet:
    say: v1 hello
  listen:
    wait: message
  reply:
    say: "v1 got {{ message.text }}"
    next: listen
  old_path:
    say: old path
  old_wait:
    wait: message
  old_reply:
    say: "v1 old got {{ message.text }}"
    end: resolved
"""

REVISED_V2 = """
flow: revised
steps:
  first:
    wait: message
  greet:
    say: v2 hello
  listen:
    wait: message
  reply:
    say: "v2 got {{ message.text }}"
    next: listen
"""


async def test_a_new_revision_is_taken_at_the_next_wait_if_the_step_still_exists(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [REVISED_V1]) as rt:
        moving, staying = _conversation(), _conversation()
        await rt.send(moving, "hi")
        await rt.send(staying, "old")
        assert await rt.channel.wait_texts(moving, 1) == ["v1 hello"]
        assert await rt.channel.wait_texts(staying, 1) == ["old path"]
        v1 = (await rt.wait_step(moving, "listen"))["revision"]
        await rt.wait_step(staying, "old_wait")

        v2 = rt.publish(REVISED_V2).revision
        assert v2 != v1
        await rt.send(moving, "again")
        await rt.send(staying, "again")
        assert (await rt.channel.wait_texts(moving, 2))[1] == "v2 got again"
        assert (await rt.wait_step(moving, "listen"))["revision"] == v2
        # old_wait is gone in v2: that conversation finishes on v1
        assert (await rt.channel.wait_texts(staying, 2))[1] == "v1 old got again"
        assert (await asyncio.wait_for(rt.handle(staying).result(), DEADLINE))["status"] == "resolved"
        assert (await rt.step(staying))["revision"] == v1

        newcomer = _conversation()
        await rt.send(newcomer, "hi")
        assert await rt.channel.wait_texts(newcomer, 1) == ["v2 hello"]


async def test_a_long_conversation_continues_as_new_without_losing_anything(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [ECHO_FLOW]) as rt:
        conv = _conversation()
        await rt.start(conv, "echo", max_events_per_run=3)  # a new run after every third event
        first_run = (await rt.handle(conv).describe()).run_id
        # Two texts over and over: the same reply, in one run and in the next, is
        # sent each time (a reply's key counts its text within the run, and names the run).
        texts = [f"n{i % 2}" for i in range(10)]
        for i, text in enumerate(texts):
            await rt.update(conv, text, message_id=f"m-{i}")
        assert await rt.channel.wait_texts(conv, 10) == [f"got {t}" for t in texts]

        description = await rt.handle(conv).describe()
        assert description.run_id != first_run
        assert description.status == WorkflowExecutionStatus.RUNNING
        view = await rt.conversations.state(conv)
        assert (view.state["step"], view.state["waiting_for"]) == ("listen", "message")
        assert len(view.timers) == 1, "the 30-minute timeout of `listen` is carried into the new run"
        due = datetime.fromisoformat(next(iter(view.timers.values())))
        assert timedelta(minutes=29) < due - datetime.now(UTC) <= timedelta(minutes=30)
        assert [e.message_id for e in await rt.wait_entries(conv, "in", 10)] == [f"m-{i}" for i in range(10)]

        # a message accepted in an earlier run is still known: a redelivery through another path is no reply
        again = await rt.update(conv, "n0", message_id="m-0")
        assert again.duplicate
        await rt.conversations.close(conv, "done")
        assert (await asyncio.wait_for(rt.handle(conv).result(), DEADLINE))["status"] == "done"
        assert rt.channel.texts(conv) == [f"got {t}" for t in texts]
        assert len({key for key, _ in rt.channel.deliveries(conv)}) == 10


async def test_a_reply_for_a_node_that_is_gone_is_kept_for_the_customer(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    """A socket channel's reply goes to the node named in the message; if none picks it up, it is stored."""
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [ECHO_FLOW]) as rt:
        conv = _conversation()
        live = rt.catalog.live("echo")
        assert live is not None
        data = ConversationInput(conv, live.name, live.revision, CHANNEL, node_pickup_seconds=1.0)
        await rt.client.start_workflow(ConversationWorkflow.run, data, id=workflow_id(conv), task_queue=rt.task_queue)
        rt.touched.add(conv)
        message = InboundMessage(id="m1", text="hi", channel=CHANNEL, meta={"reply_queue": f"gone-{uuid4()}"})
        await rt.handle(conv).execute_update(ConversationWorkflow.message, message)
        [reply] = await rt.wait_entries(conv, "out", 1)
        assert (reply.text, reply.status) == ("got hi", "stored")
        assert rt.channel.texts(conv) == []  # the worker's own channel never saw it


PIPELINE_ECHO = ECHO_FLOW.replace("flow: echo", "flow: tidy-echo\npipeline:\n  inbound: [normalize]")


async def test_a_logged_message_without_a_pipeline_skips_the_prepare_activity(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    """A server that logged the message and sent the live revisions spares the prepare round trip;
    a flow with an inbound pipeline still runs it (and tidies the text)."""
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [ECHO_FLOW]) as rt:
        plain = _conversation()
        message = InboundMessage(id=f"in-{uuid4()}", text="hello", channel=CHANNEL, meta={"logged": True})
        rt.touched.add(plain)
        await rt.conversations.send(plain, message)
        assert await rt.channel.wait_texts(plain, 1) == ["got hello"]
        plain_history = await history_text(rt.handle(plain))
        # a new live revision is still taken at the next message, without the activity
        moved = rt.publish(ECHO_FLOW.replace("got {{ message.text }}", "echo: {{ message.text }}"))
        await rt.conversations.send(
            plain, InboundMessage(id=f"in-{uuid4()}", text="again", channel=CHANNEL, meta={"logged": True})
        )
        assert await rt.channel.wait_texts(plain, 2) == ["got hello", "echo: again"]
        assert (await rt.step(plain))["revision"] == moved.revision
    assert "flowdesk.prepare" not in plain_history
    assert "skip-idle-prepare" in plain_history  # the patch marker: replays of older runs keep the activity

    async with running_conversations(fx_dev_env.client, f"{fx_task_queue}-p", tmp_path / "p", [PIPELINE_ECHO]) as rt:
        tidy = _conversation()
        rt.touched.add(tidy)
        await rt.conversations.send(
            tidy, InboundMessage(id=f"in-{uuid4()}", text="  hello   there ", channel=CHANNEL, meta={"logged": True})
        )
        assert await rt.channel.wait_texts(tidy, 1) == ["got hello there"]
        assert "flowdesk.prepare" in await history_text(rt.handle(tidy))
