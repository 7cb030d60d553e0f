"""Signing in to a running node: cookies, CSRF, the sign-in limit, session expiry, disabled users, first admin.

Each request carries its session explicitly (a ``Cookie`` header made from the cookie
the sign-in set), so what is tested is the server's decision, not the client's cookie
jar (which drops a cookie when its Max-Age passes and would hide a server that does not).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from engine.server.auth import CSRF_HEADER, SESSION_COOKIE
from tests.integration.server_support import WEBCHAT_ECHO, RunningNode, running_node

PASSWORD = "a long enough password"


class Browser:
    """One signed-in browser: its session cookie and CSRF token, sent by hand."""

    def __init__(self, node: RunningNode, cookie: str, csrf: str) -> None:
        self.node, self.cookie, self.csrf = node, cookie, csrf

    async def request(self, method: str, path: str, *, csrf: bool = True, **kwargs: Any) -> httpx.Response:
        headers = {"Cookie": f"{SESSION_COOKIE}={self.cookie}"}
        if csrf:
            headers[CSRF_HEADER] = self.csrf
        headers.update(kwargs.pop("headers", {}))
        async with httpx.AsyncClient(base_url=self.node.url, timeout=30) as client:
            return await client.request(method, path, headers=headers, **kwargs)


async def login(node: RunningNode, email: str, password: str = PASSWORD, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as client:
        return await client.post("/api/auth/login", json={"email": email, "password": password}, **kwargs)


async def signed_in(node: RunningNode, email: str, password: str = PASSWORD) -> Browser:
    response = await login(node, email, password)
    assert response.status_code == 200, response.text
    return Browser(node, response.cookies[SESSION_COOKIE], response.json()["csrf_token"])


def set_cookie(response: httpx.Response) -> str:
    return next(v for k, v in response.headers.multi_items() if k.lower() == "set-cookie")


async def test_sign_in_me_and_sign_out(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path) as node:
        node.services.store.create_user("Ana@Example.com", PASSWORD, role="agent", display_name="Ana Lima")
        async with httpx.AsyncClient(base_url=node.url) as anonymous:
            assert (await anonymous.get("/api/auth/me")).status_code == 401

        unknown = await login(node, "nobody@example.com")
        wrong = await login(node, "ana@example.com", "not the password")
        assert unknown.status_code == wrong.status_code == 401
        assert unknown.json()["detail"] == wrong.json()["detail"] == "wrong e-mail address or password"
        assert SESSION_COOKIE not in unknown.cookies and SESSION_COOKIE not in wrong.cookies

        good = await login(node, "ANA@example.com")
        assert good.status_code == 200
        cookie = set_cookie(good).lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # plain http: a Secure cookie would never come back
        me = good.json()
        assert (me["email"], me["role"], me["display_name"], me["initials"], me["kind"]) == (
            "ana@example.com",
            "agent",
            "Ana Lima",
            "AL",
            "user",
        )
        assert "password" not in str(me).lower()
        behind_https = await login(node, "ana@example.com", headers={"X-Forwarded-Proto": "https"})
        assert "secure" in set_cookie(behind_https).lower()

        browser = Browser(node, good.cookies[SESSION_COOKIE], me["csrf_token"])
        again = await browser.request("GET", "/api/auth/me")
        assert again.status_code == 200 and again.json()["csrf_token"] == me["csrf_token"]
        assert (await browser.request("POST", "/api/auth/logout", csrf=False)).status_code == 403
        out = await browser.request("POST", "/api/auth/logout")
        assert out.status_code == 200 and "max-age=0" in set_cookie(out).lower()
        gone = await browser.request("GET", "/api/auth/me")
        assert gone.status_code == 401 and "session has ended" in gone.json()["detail"]

        actions = [e.action for e in node.services.store.list_audit(limit=10)]
        assert actions.count("auth.login") == 2 and "auth.logout" in actions and "auth.login_failed" in actions
        failed = node.services.store.list_audit(action="auth.login_failed")
        assert {e.target for e in failed} == {"nobody@example.com", "ana@example.com"}


async def test_cookie_requests_that_change_things_need_the_csrf_token(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(fx_dev_env, tmp_path) as node:
        node.services.store.create_user("ed@example.com", PASSWORD, role="editor")
        browser = await signed_in(node, "ed@example.com")
        body = {"source": WEBCHAT_ECHO}
        refused = await browser.request("POST", "/api/flows/validate", json=body, csrf=False)
        assert refused.status_code == 403 and CSRF_HEADER in refused.json()["detail"]
        forged = await browser.request("POST", "/api/flows/validate", json=body, headers={CSRF_HEADER: "guess"})
        assert forged.status_code == 403
        allowed = await browser.request("POST", "/api/flows/validate", json=body)
        assert allowed.status_code == 200 and allowed.json()["valid"] is True
        # Reading needs no token; a bearer token needs none for anything.
        assert (await browser.request("GET", "/api/flows", csrf=False)).status_code == 200
        async with node.api() as api:
            assert (await api.post("/api/flows/validate", json=body)).status_code == 200


async def test_failed_sign_ins_are_limited_then_allowed_again(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    settings = {"people": {"login_attempts": 2, "login_window": "900ms"}}
    async with running_node(fx_dev_env, tmp_path, settings=settings) as node:
        node.services.store.create_user("ana@example.com", PASSWORD, role="agent")
        assert (await login(node, "ana@example.com", "wrong password 1")).status_code == 401
        assert (await login(node, "ana@example.com", "wrong password 2")).status_code == 401
        limited = await login(node, "ana@example.com")  # even the right password: the count is reached
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
        assert "too many failed sign-ins" in limited.json()["detail"]
        # The address is limited too: another account from the same address waits as well.
        assert (await login(node, "someone-else@example.com")).status_code == 429
        await asyncio.sleep(1.0)  # the window is 0.9 s
        assert (await login(node, "ana@example.com")).status_code == 200


async def test_sessions_end_when_idle_and_at_their_absolute_expiry(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(
        fx_dev_env, tmp_path, settings={"people": {"session_idle": "600ms", "session_max": "1h"}}
    ) as node:
        node.services.store.create_user("ana@example.com", PASSWORD, role="agent")
        browser = await signed_in(node, "ana@example.com")
        for _ in range(4):  # used within the idle time, it lives on past it
            await asyncio.sleep(0.3)
            assert (await browser.request("GET", "/api/auth/me")).status_code == 200
        await asyncio.sleep(0.8)
        idle = await browser.request("GET", "/api/auth/me")
        assert idle.status_code == 401 and "session has ended" in idle.json()["detail"]

    async with running_node(
        fx_dev_env, tmp_path / "max", settings={"people": {"session_idle": "1h", "session_max": "900ms"}}
    ) as node:
        node.services.store.create_user("ana@example.com", PASSWORD, role="agent")
        browser = await signed_in(node, "ana@example.com")
        assert (await browser.request("GET", "/api/auth/me")).status_code == 200
        await asyncio.sleep(0.5)
        assert (await browser.request("GET", "/api/auth/me")).status_code == 200
        await asyncio.sleep(0.5)
        assert (await browser.request("GET", "/api/auth/me")).status_code == 401  # however busy


async def test_a_disabled_user_is_out_at_once_and_cannot_sign_in(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(fx_dev_env, tmp_path) as node:
        ana = node.services.store.create_user("ana@example.com", PASSWORD, role="supervisor")
        browser = await signed_in(node, "ana@example.com")
        assert (await browser.request("GET", "/api/conversations")).status_code == 200
        async with node.api() as admin:
            disabled = await admin.post(f"/api/users/{ana.id}/disable")
            assert disabled.status_code == 200 and disabled.json()["disabled"] is True
            assert (await browser.request("GET", "/api/conversations")).status_code == 401
            refused = await login(node, "ana@example.com")
            assert refused.status_code == 401 and refused.json()["detail"] == "wrong e-mail address or password"
            assert (await admin.post(f"/api/users/{ana.id}/enable")).status_code == 200
            assert (await login(node, "ana@example.com")).status_code == 200


async def test_the_first_admin_is_set_up_from_this_machine_only_and_only_once(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, httpx.AsyncClient(base_url=node.url) as client:
        assert (await client.get("/api/auth/setup")).json() == {"needed": True, "allowed_here": True}
        proxied = await client.get("/api/auth/setup", headers={"X-Forwarded-For": "203.0.113.9"})
        assert proxied.json() == {"needed": True, "allowed_here": False}
        body = {"email": "root@example.com", "display_name": "Root", "password": PASSWORD}
        through_proxy = await client.post("/api/auth/setup", json=body, headers={"X-Forwarded-For": "127.0.0.1"})
        assert through_proxy.status_code == 403 and "flowdesk user create" in through_proxy.json()["detail"]
        short = await client.post("/api/auth/setup", json={**body, "password": "short"})
        assert short.status_code == 422 and "at least 10" in short.json()["detail"]
        made = await client.post("/api/auth/setup", json=body)
        assert made.status_code == 201 and made.json()["role"] == "admin" and SESSION_COOKIE in made.cookies
        client.cookies.clear()
        again = await client.post("/api/auth/setup", json={**body, "email": "second@example.com"})
        assert again.status_code == 409
        assert (await client.get("/api/auth/setup")).json()["needed"] is False
        assert [u.email for u in node.services.store.list_users()] == ["root@example.com"]
        assert (await login(node, "root@example.com")).status_code == 200


async def test_users_api_manages_accounts_and_people_edit_their_own(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, node.api() as admin:
        created = await admin.post(
            "/api/users", json={"email": "Bo@Example.com", "password": PASSWORD, "role": "agent", "capacity": 2}
        )
        assert created.status_code == 201, created.text
        bo = created.json()
        assert (bo["email"], bo["role"], bo["capacity"], bo["disabled"]) == ("bo@example.com", "agent", 2, False)
        listed = (await admin.get("/api/users")).json()["users"]
        assert [u["email"] for u in listed] == ["bo@example.com"]
        assert "hash" not in str(listed) and "argon2" not in str(listed)
        dupe = await admin.post("/api/users", json={"email": "bo@example.com", "password": PASSWORD, "role": "agent"})
        assert dupe.status_code == 409
        bad_role = await admin.post("/api/users", json={"email": "c@example.com", "password": PASSWORD, "role": "boss"})
        assert bad_role.status_code == 400
        changed = await admin.patch(f"/api/users/{bo['id']}", json={"role": "supervisor", "clear_capacity": True})
        assert (changed.json()["role"], changed.json()["capacity"]) == ("supervisor", None)
        assert (await admin.get("/api/users/999")).status_code == 404

        browser = await signed_in(node, "bo@example.com")
        assert (await browser.request("GET", "/api/users")).status_code == 403  # supervisors do not manage users
        mine = await browser.request("PUT", "/api/users/me", json={"display_name": "Bo Chen", "language": "zh"})
        assert (mine.json()["display_name"], mine.json()["language"], mine.json()["initials"]) == (
            "Bo Chen",
            "zh",
            "BC",
        )
        no_current = await browser.request("PUT", "/api/users/me", json={"password": "a brand new password"})
        assert no_current.status_code == 403
        other = await signed_in(node, "bo@example.com")
        changed_pw = await browser.request(
            "PUT", "/api/users/me", json={"password": "a brand new password", "current_password": PASSWORD}
        )
        assert changed_pw.status_code == 200
        assert (await browser.request("GET", "/api/auth/me")).status_code == 200  # the session it was made from
        assert (await other.request("GET", "/api/auth/me")).status_code == 401  # every other one ends
        assert (await login(node, "bo@example.com", "a brand new password")).status_code == 200

        reset = await admin.post(f"/api/users/{bo['id']}/password", json={"password": "set by the admin"})
        assert reset.status_code == 200
        assert (await browser.request("GET", "/api/auth/me")).status_code == 401
        actions = {e.action for e in node.services.store.list_audit(limit=50)}
        assert {"user.create", "user.update", "user.password", "auth.login"} <= actions
        token_me = await admin.get("/api/users/me")
        assert token_me.status_code == 404 and "API token" in token_me.json()["detail"]


async def test_passwords_never_reach_the_log_the_audit_or_the_database(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Zebra-Quartz-0192-secret"
    caplog.set_level(logging.DEBUG)
    async with running_node(fx_dev_env, tmp_path) as node, node.api() as admin:
        await admin.post("/api/users", json={"email": "z@example.com", "password": secret, "role": "agent"})
        await login(node, "z@example.com", secret + "-wrong")
        await login(node, "z@example.com", secret)
        await login(node, "nobody@example.com", secret)
        await admin.post("/api/users", json={"email": "y@example.com", "password": "short", "role": "agent"})
        entries = node.services.store.list_audit(limit=50)
        assert entries and secret not in repr([(e.action, e.target, e.detail) for e in entries])
    assert secret not in caplog.text
    database = b"".join(p.read_bytes() for p in (node.data_dir).glob("flowdesk.db*"))
    assert secret.encode() not in database
