"""The agent socket as the auth module lets people in: a session cookie from our own pages, a ticket once, a token.

``/ws/agent`` hands its credentials to ``engine.server.auth.authenticate``; what the
test checks is who gets the ``hello`` frame and who is closed (4401 / 4403) instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import connect

from engine.server.auth import CSRF_HEADER, SESSION_COOKIE
from tests.integration.server_support import RunningNode, running_node

PASSWORD = "a long enough password"


async def first_frame(node: RunningNode, query: str = "", headers: dict[str, str] | None = None) -> dict[str, Any]:
    url = node.url.replace("http://", "ws://") + "/ws/agent" + query
    async with connect(url, additional_headers=headers or {}, open_timeout=10) as socket:
        frame: dict[str, Any] = json.loads(await socket.recv(decode=True))
        return frame


async def test_cookie_from_our_pages_ticket_once_and_token_open_the_agent_socket(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(fx_dev_env, tmp_path) as node:
        node.services.store.create_user("ana@example.com", PASSWORD, role="agent")
        async with httpx.AsyncClient(base_url=node.url) as client:
            signed_in = await client.post("/api/auth/login", json={"email": "ana@example.com", "password": PASSWORD})
            cookie = {"Cookie": f"{SESSION_COOKIE}={signed_in.cookies[SESSION_COOKIE]}"}
            csrf = {CSRF_HEADER: signed_in.json()["csrf_token"]}
            client.cookies.clear()
            ticket = (await client.post("/api/auth/ticket", headers={**cookie, **csrf})).json()["ticket"]

        host = node.url.removeprefix("http://")
        ours = await first_frame(node, headers={**cookie, "Origin": f"http://{host}"})
        assert ours["kind"] == "hello" and ours["data"]["role"] == "agent"
        theirs = await first_frame(node, headers={**cookie, "Origin": "https://evil.example"})
        assert theirs["kind"] == "error" and theirs["data"]["code"] == 4403

        by_ticket = await first_frame(node, f"?ticket={ticket}", headers={"Origin": "https://anywhere.example"})
        assert by_ticket["kind"] == "hello" and by_ticket["data"]["role"] == "agent"
        replayed = await first_frame(node, f"?ticket={ticket}")
        assert replayed["kind"] == "error" and replayed["data"]["code"] == 4401

        by_token = await first_frame(node, headers={"Authorization": f"Bearer {node.token}"})
        assert by_token["kind"] == "hello" and by_token["data"]["role"] == "admin"
        nobody = await first_frame(node)
        assert nobody["kind"] == "error" and nobody["data"]["code"] == 4401
