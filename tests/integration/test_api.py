"""The REST API through a running node: auth on every route, flows, conversations, health, metrics."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
from litestar.routes import HTTPRoute
from temporalio.testing import WorkflowEnvironment

from engine.server.auth import is_public
from tests.integration.runtime_support import eventually
from tests.integration.server_support import WEBCHAT_ECHO, RunningNode, chat, running_node

#: The demo order API is public too, where the settings turn it on (demo.order_api). Vendors'
#: webhooks carry no token: each channel checks the vendor's signature instead (401 unsigned).
PUBLIC = {
    "/",
    "/healthz",
    "/readyz",
    "/ws/chat",
    "/demo/api/orders/{number:str}",
    "/webhooks/{kind:str}",
    "/webhooks/{kind:str}/{account:str}",
    # Signing in, and creating the first admin (from this machine only, while nobody exists).
    "/api/auth/login",
    "/api/auth/setup",
}


def _routes(node: RunningNode) -> list[tuple[str, str, bool]]:
    """(method, path, public) of every HTTP route the app has, from the app itself."""
    assert node.node.app is not None
    found: list[tuple[str, str, bool]] = []
    for route in node.node.app.routes:
        if not isinstance(route, HTTPRoute):
            continue  # the chat socket is public; the web-chat tests cover it
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods):
                if method in ("HEAD", "OPTIONS"):
                    continue
                found.append((str(method), route.path, is_public(handler, route.path)))
    return found


def _concrete(path: str) -> str:
    """The path with its parameters filled in (``1`` for a number: ``x`` would be a 404 before the guard)."""
    return re.sub(r"\{(\w+):(\w+)\}", lambda m: "1" if m.group(2) == "int" else "x", path)


async def test_every_non_public_route_needs_a_valid_token(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path) as node:
        routes = _routes(node)
        protected = [(m, p) for m, p, public in routes if not public]
        assert len(protected) >= 12, routes  # the flows and conversations APIs and /metrics
        assert {p for _m, p, public in routes if public and not p.startswith(("/schema", "/ui"))} <= PUBLIC
        async with httpx.AsyncClient(base_url=node.url) as anonymous, node.api(token="fd_wrong") as wrong:
            for method, path in protected:
                for client, why in ((anonymous, "no token"), (wrong, "a wrong token")):
                    response = await client.request(method, _concrete(path), json={})
                    assert response.status_code == 401, f"{method} {path} with {why}: {response.status_code}"
                    assert response.headers["content-type"].startswith("application/problem+json")
                    assert "token" in response.json()["detail"]
        async with httpx.AsyncClient(base_url=node.url) as anonymous:
            assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
            ready = await anonymous.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "temporal": "ok"}
            assert (await anonymous.get("/schema/openapi.json")).json()["info"]["title"] == "Flowdesk API"
            # No vendor channel is configured here: its webhook is not served, signed or not.
            assert (await anonymous.post("/webhooks/telegram", json={"update_id": 1})).status_code == 404


async def test_a_revoked_token_is_refused(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path) as node:
        store = node.services.store
        token = store.create_token("short-lived")
        async with node.api(token=token) as api:
            assert (await api.get("/api/flows")).status_code == 200
            store.revoke_token("short-lived")
            assert (await api.get("/api/flows")).status_code == 401


async def test_flows_save_history_diff_and_roll_back(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, node.api() as api:
        listing = (await api.get("/api/flows")).json()
        assert [f["name"] for f in listing["flows"]] == ["echo"] and listing["invalid_files"] == []
        first = listing["flows"][0]["live_revision"]
        assert (await api.get("/api/flows/echo")).json()["source"] == WEBCHAT_ECHO

        broken = WEBCHAT_ECHO.replace("next: listen", "next: nowhere")
        checked = (await api.post("/api/flows/validate", json={"source": broken})).json()
        assert checked["valid"] is False
        assert checked["diagnostics"][0]["code"] == "FD201" and checked["diagnostics"][0]["line"] == 11
        refused = await api.put("/api/flows/echo", json={"source": broken, "author": "ana", "message": "oops"})
        assert refused.status_code == 422 and refused.json()["diagnostics"][0]["code"] == "FD201"
        assert (node.flows_dir / "echo.yaml").read_text() == WEBCHAT_ECHO  # nothing was written

        edited = WEBCHAT_ECHO.replace("got {{", "you said {{")
        saved = await api.put("/api/flows/echo", json={"source": edited, "author": "ana", "message": "friendlier"})
        assert saved.status_code == 200 and saved.json()["live"] is True
        second = saved.json()["revision"]
        assert (node.flows_dir / "echo.yaml").read_text() == edited

        history = (await api.get("/api/flows/echo/revisions")).json()["revisions"]
        newest = history[0]
        assert (newest["revision"], newest["author"], newest["message"], newest["live"]) == (
            second,
            "ana",
            "friendlier",
            True,
        )
        assert history[-1]["revision"] == first
        diff = (await api.get("/api/flows/echo/diff", params={"from": first})).json()["diff"]
        assert '-    say: "got {{ message.text }}"' in diff and '+    say: "you said {{ message.text }}"' in diff

        back = await api.post("/api/flows/echo/rollback", json={"revision": first, "author": "bo"})
        assert back.json()["revision"] == first and back.json()["live"] is True
        assert (node.flows_dir / "echo.yaml").read_text() == WEBCHAT_ECHO
        audited = await asyncio.to_thread(node.services.store.list_audit, action="flow.*")
        assert [(e.action, e.target, e.detail.get("revision")) for e in reversed(audited)] == [
            ("flow.save", "echo", second),
            ("flow.rollback", "echo", first),
        ]
        assert (await api.get("/api/flows/nope")).status_code == 404
        bad_body = await api.put("/api/flows/echo", content=b"{", headers={"content-type": "application/json"})
        assert bad_body.status_code == 400 and bad_body.headers["content-type"].startswith("application/problem+json")
        missing_field = await api.put("/api/flows/echo", json={"source": edited})
        assert missing_field.status_code == 400 and "author" in missing_field.json()["detail"]


async def test_conversations_list_transcript_state_and_close(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, node.api() as api:
        async with chat(node) as visitor:
            await visitor.say("hi")
            await visitor.reply_to("got hi")
        listed = (await api.get("/api/conversations", params={"channel": "webchat"})).json()["conversations"]
        assert len(listed) == 1 and listed[0]["status"] == "open" and listed[0]["outdated"] is False
        conversation = listed[0]["id"]
        transcript = (await api.get(f"/api/conversations/{conversation}/messages")).json()["messages"]
        assert [(m["direction"], m["text"]) for m in transcript] == [("in", "hi"), ("out", "got hi")]
        state = (await api.get(f"/api/conversations/{conversation}/state")).json()
        assert state["state"]["flow"] == "echo" and state["state"]["step"] == "listen"

        # A new revision makes the running conversation outdated until it moves over.
        (node.flows_dir / "echo.yaml").write_text(WEBCHAT_ECHO.replace("got {{", "re: {{"))
        await eventually(
            lambda: node.services.catalog.live_map()["echo"] != listed[0]["revision"], "the edit to become live"
        )
        outdated = (await api.get("/api/conversations", params={"outdated": "true"})).json()["conversations"]
        assert [c["id"] for c in outdated] == [conversation]

        closed = await api.post(f"/api/conversations/{conversation}/close", json={"status": "resolved"})
        assert closed.status_code == 202
        audited = await asyncio.to_thread(node.services.store.list_audit, conversation_id=conversation)
        assert [(e.action, e.detail) for e in audited] == [("conversation.close", {"status": "resolved"})]

        async def ended() -> bool:
            row = (await api.get(f"/api/conversations/{conversation}")).json()
            return bool(row["status"] == "ended")

        await eventually(ended, "the conversation to end")
        again = await api.post(f"/api/conversations/{conversation}/close", json={})
        assert again.status_code == 409
        assert (await api.get("/api/conversations", params={"status": "ended"})).json()["conversations"][0]["id"] == (
            conversation
        )
        assert (await api.get("/api/conversations/unknown/messages")).status_code == 404


async def test_metrics_count_what_happened(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, node.api() as api:
        async with chat(node) as visitor:
            await visitor.say("count me")
            await visitor.reply_to("got count me")
            text = (await api.get("/metrics")).text
            assert re.search(r"^flowdesk_webchat_sockets(\{[^}]*\})? [1-9]", text, re.M), text
        for name in (
            'flowdesk_messages_in_total{channel="webchat"}',
            'flowdesk_messages_out_total{channel="webchat"}',
            'flowdesk_step_executions_total{flow="echo",kind="say"}',
            'flowdesk_flow_reloads_total{outcome="ok"}',
            'flowdesk_conversations{status="open"}',
            "flowdesk_update_roundtrip_seconds_count",
        ):
            assert name in text, name
