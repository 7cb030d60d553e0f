"""A web-chat visitor is stored when they first write, not when they connect."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, func, select
from temporalio.testing import WorkflowEnvironment

from engine.store import Contact, Identity
from tests.integration.server_support import RunningNode, chat, running_node


def _rows(node: RunningNode) -> tuple[int, int]:
    assert node.node.store is not None
    with Session(node.node.store.engine) as session:
        contacts = session.exec(select(func.count()).select_from(Contact)).one()
        identities = session.exec(select(func.count()).select_from(Identity)).one()
    return int(contacts), int(identities)


async def test_bare_connects_leave_nothing_and_the_first_message_creates_one_contact(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(fx_dev_env, tmp_path) as node:
        for _ in range(30):
            async with chat(node) as idle:
                await idle.next("welcome")
                assert (await idle.next("history"))["messages"] == []
        assert _rows(node) == (0, 0)

        # A visitor connects in two tabs with one token, and writes in the first.
        async with chat(node) as first:
            token = (await first.next("welcome"))["visitor"]
            async with chat(node, f"?visitor={token}") as second:
                await second.next("welcome")
                assert _rows(node) == (0, 0)
                await first.say("hello")
                await first.reply_to("got hello")
                assert _rows(node) == (1, 1)
                # The other tab belongs to the same contact now: it sees the conversation live.
                assert (await second.next("message", where={"direction": "out"}))["text"] == "got hello"
                await second.say("again")
                await second.reply_to("got again")
        assert _rows(node) == (1, 1)

        # Reconnecting later with the token: the same contact, and the history comes back.
        async with chat(node, f"?visitor={token}") as back:
            await back.next("welcome")
            history = (await back.next("history"))["messages"]
            assert [m["text"] for m in history] == ["hello", "got hello", "again", "got again"]
        assert _rows(node) == (1, 1)
