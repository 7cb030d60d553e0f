"""Canned responses, the audit log and reports through a running node: roles, rendering, CSV, metrics.

People sign in as they would (a user, a password, the session cookie and its CSRF
token); machines use role tokens. Report data is written as the workflow writes
it: log entries through the store's ``record``.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from engine.message_log import RecordInput
from engine.store import Store
from engine.store.tables import AgentQueue, CannedResponse, Contact, Conversation, CsatRating
from tests.integration.runtime_support import DEADLINE, eventually
from tests.integration.server_support import RunningNode, chat, running_node

#: Keeps what the customer said in a variable, so a canned response can use it.
KEEPER = """
flow: keeper
channels: [webchat]
steps:
  listen:
    wait: message
    timeout: 30m
    on_timeout: bye
  keep:
    set: { said: "message.text" }
  reply:
    say: "noted"
    next: listen
  bye:
    say: bye
    end: abandoned
"""
PASSWORD = "correct horse battery staple"


@asynccontextmanager
async def signed_in(node: RunningNode, email: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client signed in as ``email``: the session cookie, and the CSRF token on every request."""
    async with httpx.AsyncClient(base_url=node.url, timeout=DEADLINE) as client:
        me = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert me.status_code == 200, me.text
        client.headers["X-CSRF-Token"] = me.json()["csrf_token"]
        yield client


def role_token(node: RunningNode, role: str) -> str:
    return node.services.store.create_token(f"{role}-{uuid.uuid4().hex[:6]}", role=role)


async def test_canned_responses_roles_render_and_audit(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path, flows={"keeper.yaml": KEEPER}) as node:
        store = node.services.store
        ana = store.create_user("ana@example.com", PASSWORD, role="agent", display_name="Ana")
        store.create_user("bo@example.com", PASSWORD, role="agent", display_name="Bo")
        async with (
            signed_in(node, "ana@example.com") as as_ana,
            signed_in(node, "bo@example.com") as as_bo,
            node.api(token=role_token(node, "supervisor")) as supervisor,
            node.api(token=role_token(node, "agent")) as agent_token,
            node.api(token=role_token(node, "editor")) as editor,
            node.api() as admin,
        ):
            # Ana keeps her own; a shared one is for supervisors and admins.
            text = "Hi {{ contact.name }}, you said {{ vars.said }} on {{ conversation.channel }}. {{ agent.name }}"
            mine = await as_ana.post("/api/canned", json={"shortcut": "/thanks", "title": "Thanks", "text": text})
            assert mine.status_code == 201, mine.text
            assert (mine.json()["shortcut"], mine.json()["shared"], mine.json()["owner_id"]) == (
                "thanks",
                False,
                ana.id,
            )
            refused = await as_ana.post("/api/canned", json={"shortcut": "refund", "text": "x", "shared": True})
            assert refused.status_code == 403 and "supervisors" in refused.json()["detail"]
            shared = await supervisor.post(
                "/api/canned", json={"shortcut": "refund", "title": "Refunds", "text": "5 days", "shared": True}
            )
            assert shared.status_code == 201 and shared.json()["shared"] is True
            shared_id = shared.json()["id"]
            again = await admin.post("/api/canned", json={"shortcut": "REFUND", "text": "y", "shared": True})
            assert again.status_code == 409 and "refund" in again.json()["detail"].lower()

            # The picker: Ana sees the shared ones and hers; Bo never sees Ana's, nor may touch it.
            listed = (await as_ana.get("/api/canned", params={"q": "/"})).json()["canned"]
            assert [c["shortcut"] for c in listed] == ["refund", "thanks"]
            assert [
                c["shortcut"] for c in (await as_ana.get("/api/canned", params={"q": "said"})).json()["canned"]
            ] == ["thanks"]
            assert [c["shortcut"] for c in (await as_bo.get("/api/canned")).json()["canned"]] == ["refund"]
            mine_id = mine.json()["id"]
            assert (await as_bo.put(f"/api/canned/{mine_id}", json={"shortcut": "x", "text": "y"})).status_code == 404
            assert (await as_bo.delete(f"/api/canned/{mine_id}")).status_code == 404
            # Agents use shared ones but do not change them; editors have no canned responses at all.
            edit = {"shortcut": "refund", "text": "6 days"}
            assert (await agent_token.put(f"/api/canned/{shared_id}", json=edit)).status_code == 403
            assert (await as_ana.delete(f"/api/canned/{shared_id}")).status_code == 403
            assert (await editor.get("/api/canned")).status_code == 403
            assert (await supervisor.put(f"/api/canned/{shared_id}", json=edit)).json()["text"] == "6 days"
            # A token owns nothing: its own response has nobody to belong to.
            assert (await agent_token.post("/api/canned", json={"shortcut": "t", "text": "x"})).status_code == 422

            # A broken template is refused at save, saying where.
            for broken, where in (
                ("Hi {{ contact.name ", "line 1"),
                ("Hello\nDear {{ contcat.name }}", "line 2, column 9"),
                ("{{ ''.__class__.__mro__ }}", "unsafe"),
                ("{{ name | nofilter }}", "nofilter"),
            ):
                answer = await as_ana.post("/api/canned", json={"shortcut": "broken", "text": broken})
                assert answer.status_code == 422, broken
                assert where in answer.json()["detail"], answer.json()
                assert answer.json()["diagnostics"][0]["message"]
            bad_shortcut = await as_ana.post("/api/canned", json={"shortcut": "two words", "text": "x"})
            assert bad_shortcut.status_code == 422

            # Rendering: the conversation's values fill the template; a customer's `{{` stays text.
            async with chat(node) as visitor:
                await visitor.say("{{ 7*7 }} and {% raw %}")
                await visitor.reply_to("noted")
            conversation = await eventually(lambda: store.list_conversations(limit=1), "the conversation is stored")
            conversation_id = conversation[0].id
            _set_conversation(store, conversation_id, contact_name="{{ 6*7 }}", queue="tier1")
            rendered = await as_ana.post(f"/api/canned/{mine_id}/render", json={"conversation_id": conversation_id})
            assert rendered.status_code == 200, rendered.text
            assert rendered.json()["text"] == "Hi {{ 6*7 }}, you said {{ 7*7 }} and {% raw %} on webchat. Ana"
            missing = await as_ana.post(f"/api/canned/{mine_id}/render", json={"conversation_id": "nope"})
            assert missing.status_code == 404
            assert (
                await as_bo.post(f"/api/canned/{mine_id}/render", json={"conversation_id": conversation_id})
            ).status_code == 404
            # One saved before its text could be checked (or by hand in the database): its failure is a 422.
            unsafe = _insert_canned(store, "{{ ''.__class__ }}")
            failed = await admin.post(f"/api/canned/{unsafe}/render", json={"conversation_id": conversation_id})
            assert failed.status_code == 422 and "unsafe" in failed.json()["detail"]

            assert (await as_ana.delete(f"/api/canned/{mine_id}")).json() == {"id": mine_id, "deleted": True}
            assert (await as_ana.delete(f"/api/canned/{mine_id}")).status_code == 404

            # Every change is audited, without the text.
            entries = (await admin.get("/api/audit", params={"action": "canned.*"})).json()["entries"]
            assert [e["action"] for e in entries] == [
                "canned.delete",
                "canned.update",
                "canned.create",
                "canned.create",
            ]
            assert all("contact.name" not in json.dumps(e) and "6 days" not in json.dumps(e) for e in entries)
            assert entries[-1]["actor"] == f"user:{ana.id}" and entries[-1]["target"] == "thanks"
            for forbidden in (supervisor, agent_token, as_ana):
                assert (await forbidden.get("/api/audit")).status_code == 403


async def test_audit_pages_filters_and_csv(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, node.api() as admin:
        store = node.services.store
        for index in range(5):
            store.audit(actor="user:1", actor_role="agent", action="conversation.take", conversation_id=f"c{index}")
        store.audit(
            actor="user:2", actor_role="admin", action="user.create", target="=HYPERLINK(1)", detail={"role": "agent"}
        )
        first = (await admin.get("/api/audit", params={"limit": 4})).json()
        assert len(first["entries"]) == 4 and first["next_before_id"] == first["entries"][-1]["id"]
        rest = (await admin.get("/api/audit", params={"limit": 4, "before_id": first["next_before_id"]})).json()
        assert len(rest["entries"]) == 2 and rest["next_before_id"] is None
        by_actor = (await admin.get("/api/audit", params={"actor": "user:2"})).json()["entries"]
        assert [e["action"] for e in by_actor] == ["user.create"]
        one = (await admin.get("/api/audit", params={"conversation_id": "c3"})).json()["entries"]
        assert [e["conversation_id"] for e in one] == ["c3"]
        later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        assert (await admin.get("/api/audit", params={"since": later})).json()["entries"] == []
        assert (await admin.get("/api/audit", params={"since": "yesterday"})).status_code == 400

        exported = await admin.get("/api/audit", params={"format": "csv"})
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert len(rows) == 6 and rows[0]["action"] == "user.create"
        assert json.loads(rows[0]["detail"]) == {"role": "agent"}
        assert rows[0]["target"] == "'=HYPERLINK(1)"  # a spreadsheet shows it, never runs it
        accepted = await admin.get("/api/audit", headers={"Accept": "text/csv"})
        assert accepted.headers["content-type"].startswith("text/csv")


T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)


def _line(store: Store, conversation: str, kind: str, seconds: float, who: str = "") -> None:
    at = (T0 + timedelta(seconds=seconds)).isoformat()
    if kind == "reply":
        entry = RecordInput(
            conversation, "out", "hello", "webchat", f"r{seconds}", at, status="sent", sender=f"agent:{who}"
        )
    else:
        sender = f"agent:{who}" if kind == "assigned" else "system"
        entry = RecordInput(conversation, "event", who, "webchat", f"{kind}-{seconds}", at, status=kind, sender=sender)
    store.record(entry)


async def test_reports_json_csv_and_roles(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path) as node:
        store = node.services.store
        ana = store.create_user("ana@example.com", PASSWORD, role="agent", display_name="Ana")
        agent = str(ana.id)
        for conversation, wait, reply, resolve in (("c1", 60, 90, 600), ("c2", 20, 30, 200), ("c3", 100, 400, 1000)):
            _line(store, conversation, "handoff", 0, "tier1")
            _line(store, conversation, "assigned", wait, agent)
            _line(store, conversation, "reply", reply, agent)
            _line(store, conversation, "resolved", resolve)
        _line(store, "c4", "handoff", 0, "tier1")
        _line(store, "c4", "ended", 50)
        with store._write() as session:
            session.add(CsatRating(conversation_id="c1", rating=5, agent=agent, queue="tier1", at=T0))
            session.add(CsatRating(conversation_id="c2", rating=4, agent=agent, queue="tier1", at=T0))
        async with node.api(token=role_token(node, "supervisor")) as supervisor:
            report = (await supervisor.get("/api/reports/agents")).json()
            assert datetime.fromisoformat(report["to"]) - datetime.fromisoformat(report["from"]) == timedelta(days=7)
            (row,) = report["agents"]
            assert (row["agent"], row["display_name"], row["handled"], row["resolved"]) == (agent, "Ana", 3, 3)
            # First replies 30, 10, 300 s; resolutions 540, 180, 900 s after getting each conversation.
            assert (row["first_reply_p50_s"], row["first_reply_p90_s"]) == (30.0, 300.0)
            assert (row["resolution_p50_s"], row["resolution_p90_s"]) == (540.0, 900.0)
            assert (row["csat_average"], row["csat_count"]) == (4.5, 2)
            queues = (await supervisor.get("/api/reports/queues")).json()["queues"]
            assert [(q["queue"], q["handoffs"], q["assigned"], q["abandoned"]) for q in queues] == [("tier1", 4, 3, 1)]
            assert (queues[0]["assignment_wait_p50_s"], queues[0]["assignment_wait_p90_s"]) == (60.0, 100.0)

            span = {"from": (T0 + timedelta(seconds=500)).isoformat(), "to": (T0 + timedelta(hours=1)).isoformat()}
            late = (await supervisor.get("/api/reports/agents", params=span)).json()["agents"]
            assert [(r["handled"], r["resolved"], r["first_replies"]) for r in late] == [(0, 2, 0)]

            exported = await supervisor.get("/api/reports/agents", params={"format": "csv"})
            assert exported.headers["content-type"].startswith("text/csv")
            (line,) = list(csv.DictReader(io.StringIO(exported.text)))
            assert (line["agent"], line["handled"], line["first_reply_p90_s"], line["csat_average"]) == (
                agent,
                "3",
                "300.0",
                "4.5",
            )
            by_accept = await supervisor.get("/api/reports/queues", headers={"Accept": "text/csv"})
            (queue_line,) = list(csv.DictReader(io.StringIO(by_accept.text)))
            assert (queue_line["queue"], queue_line["abandoned"], queue_line["csat_count"]) == ("tier1", "1", "2")

            assert (await supervisor.get("/api/reports/agents", params={"from": "last week"})).status_code == 400
            backwards = {"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}
            assert (await supervisor.get("/api/reports/agents", params=backwards)).status_code == 400
            too_long = {"from": "2025-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
            assert (await supervisor.get("/api/reports/queues", params=too_long)).status_code == 400
        for role in ("agent", "editor"):
            async with node.api(token=role_token(node, role)) as other:
                assert (await other.get("/api/reports/agents")).status_code == 403
                assert (await other.get("/api/reports/queues")).status_code == 403


async def test_queue_and_presence_gauges_are_read_at_scrape(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, node.api() as admin:
        store = node.services.store
        ana = store.create_user("ana@example.com", PASSWORD, role="agent")
        bo = store.create_user("bo@example.com", PASSWORD, role="agent")
        assert ana.id is not None and bo.id is not None
        with store._write() as session:
            session.add(AgentQueue(name="tier1", members=[ana.id, bo.id]))
            for user in (ana, bo):
                row = session.get(type(user), user.id)
                assert row is not None
                row.presence = "online" if user is ana else "away"
                session.add(row)
        _line(store, "w1", "handoff", 0, "tier1")
        _set_conversation(store, "w1", queue="tier1", waiting_since=datetime.now(UTC) - timedelta(minutes=10))
        scraped = (await admin.get("/metrics")).text
        assert 'flowdesk_queue_length{queue="tier1"} 1.0' in scraped
        oldest = next(line for line in scraped.splitlines() if line.startswith("flowdesk_queue_oldest_wait_seconds{"))
        assert float(oldest.split()[-1]) >= 600
        assert 'flowdesk_agents{presence="online",queue="tier1"} 1.0' in scraped
        assert 'flowdesk_agents{presence="away",queue="tier1"} 1.0' in scraped
        assert 'flowdesk_agents{presence="offline",queue="tier1"} 0.0' in scraped


def _set_conversation(
    store: Store,
    conversation_id: str,
    *,
    queue: str,
    contact_name: str | None = None,
    waiting_since: datetime | None = None,
) -> None:
    """What the hand-off's derivation (and a contact's profile) would have put in the columns."""
    with store._write() as session:
        row = session.get(Conversation, conversation_id)
        assert row is not None
        row.queue = queue
        if waiting_since is not None:
            row.status, row.assigned_agent, row.waiting_since = "handoff", None, waiting_since
        session.add(row)
        if contact_name is not None:
            contact = session.get(Contact, row.contact_id)
            assert contact is not None
            contact.name = contact_name
            session.add(contact)


def _insert_canned(store: Store, text: str) -> int:
    with store._write() as session:
        row = CannedResponse(owner_id=None, shortcut=f"raw-{uuid.uuid4().hex[:6]}", text=text)
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id
