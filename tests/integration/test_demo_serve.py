"""The shipped demo on a fresh `flowdesk serve` with no environment variables, over /ws/chat.

The shipped flowdesk.yaml and flows/ are copied as they are; only the ports are
added and, for the hand-off paths, the `support` calendar is made open (or
closed) all week, since the real clock decides which path a human request takes.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml
from websockets.asyncio.client import connect

from tests.integration.runtime_support import DEADLINE, eventually
from tests.integration.server_support import ChatClient
from tests.net_support import free_port

REPO = Path(__file__).resolve().parents[2]
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Variables a person's shell might have that would make this not a fresh machine.
UNSET = ("SHOP_TOKEN", "OPENAI_API_KEY")


def _demo_root(root: Path, *, support_open: bool) -> Path:
    shutil.copytree(REPO / "flows", root / "flows")
    text = (REPO / "flowdesk.yaml").read_text(encoding="utf-8")
    settings: dict[str, Any] = yaml.safe_load(text)
    weekly = {day: ["00:00-24:00"] for day in WEEK} if support_open else {}
    settings["business_hours"]["support"]["weekly"] = weekly
    settings["server"] = {"host": "127.0.0.1", "port": free_port()}
    settings["temporal"] = {"embedded_port": free_port(), "ui_port": free_port()}
    settings["data_dir"] = "data"
    (root / "flowdesk.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    return root


@asynccontextmanager
async def _serve(root: Path) -> AsyncIterator[str]:
    port = yaml.safe_load((root / "flowdesk.yaml").read_text(encoding="utf-8"))["server"]["port"]
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in UNSET and not k.startswith("FLOWDESK_")}
    env.update(PYTHONPATH=str(REPO), FLOWDESK_WORKFLOW_SANDBOX="off")
    log = root / "serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "engine", "serve"], cwd=root, env=env, stdout=out, stderr=out)

    async def ready() -> bool:
        assert process.poll() is None, log.read_text(errors="replace")[-4000:]
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{url}/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    try:
        await eventually(ready, "flowdesk serve to be ready", timeout=60, interval=0.2)
        yield url
        output = log.read_text(errors="replace")
        assert "Traceback" not in output, output[-4000:]
    finally:
        process.terminate()
        try:
            process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()


@asynccontextmanager
async def _visitor(url: str) -> AsyncIterator[ChatClient]:
    async with connect(url.replace("http://", "ws://") + "/ws/chat", open_timeout=DEADLINE) as socket:
        visitor = ChatClient(socket)
        await visitor.next("history")
        yield visitor


async def _bot(visitor: ChatClient, pattern: str) -> str:
    """The bot's next message; it must match ``pattern``."""
    text = str((await visitor.next("message", where={"direction": "out"}))["text"])
    assert re.search(pattern, text), f"{text!r} does not match {pattern!r}"
    return text


async def test_every_path_of_the_demo_works_on_a_fresh_serve(tmp_path: Path) -> None:
    async with _serve(_demo_root(tmp_path, support_open=True)) as url:
        async with httpx.AsyncClient(base_url=url) as anonymous:
            order = (await anonymous.get("/demo/api/orders/20240517")).json()
            assert order["id"] == "20240517" and order["status"] in ("shipped", "delivered", "processing")
            missing = await anonymous.get("/demo/api/orders/12")
            assert missing.status_code == 404
            assert missing.headers["content-type"].startswith("application/problem+json")

        async with _visitor(url) as visitor:
            await visitor.say("How long does shipping take?")
            await _bot(visitor, r"^Hi there! I'm the Demo Shop assistant\.$")
            await _bot(visitor, r"Delivery takes 1-3 working days")

            await visitor.say("I want a refund")
            await _bot(visitor, r"I can help with a refund")
            await _bot(visitor, r"order number")
            await visitor.say("1234567")
            await _bot(visitor, r"Your refund for order 1234567 is filed")
            await _bot(visitor, r"Anything else")

            await visitor.say("order status")
            await _bot(visitor, r"order number")
            await visitor.say("20240517")
            await _bot(visitor, rf"^Order 20240517 is {order['status']}")
            await _bot(visitor, r"Anything else")

            # The sixth message in a few seconds: the shipped rate limit (a burst of 5, then one
            # a second) is not what this test is about, and a person typing never meets it.
            await asyncio.sleep(1.2)
            await visitor.say("thanks, bye")
            await _bot(visitor, r"Thanks for contacting Demo Shop")

        async with _visitor(url) as visitor:
            await visitor.say("I want to talk to a human")
            await _bot(visitor, r"Demo Shop assistant")
            await _bot(visitor, r"^Sure\.$")
            await _bot(visitor, r"connecting you with a colleague")


async def test_after_hours_a_human_request_gets_our_hours(tmp_path: Path) -> None:
    async with _serve(_demo_root(tmp_path, support_open=False)) as url, _visitor(url) as visitor:
        await visitor.say("I want to talk to a human")
        await _bot(visitor, r"Demo Shop assistant")
        await _bot(visitor, r"^Sure\.$")
        await _bot(visitor, r"Our team is not in right now")
