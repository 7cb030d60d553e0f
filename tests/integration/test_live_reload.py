"""Live reload while a conversation runs: valid edits go live, broken ones keep the last good revision."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.faq_support import FAQ_FLOW as BOT_FLOW
from tests.integration.runtime_support import eventually
from tests.integration.server_support import WEBCHAT_ECHO, chat, running_node


async def test_edits_while_a_conversation_runs(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, node.api() as api, chat(node) as visitor:
        flow_file = node.flows_dir / "echo.yaml"
        first = node.services.catalog.live_map()["echo"]
        await visitor.say("one")
        await visitor.reply_to("got one")

        # A valid edit, saved the way editors do it: a temporary file renamed over the original.
        temporary = node.flows_dir / ".echo.yaml.swp"
        temporary.write_text(WEBCHAT_ECHO.replace("got {{", "v2 {{"))
        temporary.replace(flow_file)
        await eventually(lambda: node.services.catalog.live_map()["echo"] != first, "the edit to go live")
        await visitor.say("two")
        # The conversation waited at `listen` (a safe point): it moved to the new revision.
        await visitor.reply_to("v2 two")

        # A broken edit: the last good revision stays live, the API says what is wrong and where.
        live_before = node.services.catalog.live_map()["echo"]
        flow_file.write_text(WEBCHAT_ECHO.replace("got {{", "v3 {{").replace("next: listen", "next: nowhere"))

        async def reported() -> list[dict[str, object]] | None:
            flows = (await api.get("/api/flows")).json()["flows"]
            error = flows[0]["last_error"]
            return error if error else None

        errors = await eventually(reported, "the broken edit to be reported")
        assert errors[0]["code"] == "FD201" and errors[0]["line"] == 11 and errors[0]["file"] == str(flow_file)
        assert node.services.catalog.live_map()["echo"] == live_before
        await visitor.say("three")
        await visitor.reply_to("v2 three")
        metrics = (await api.get("/metrics")).text
        assert 'flowdesk_flow_reloads_total{outcome="failed"}' in metrics
        assert "flowdesk_flow_files_invalid 1.0" in metrics

        # Fixed again.
        flow_file.write_text(WEBCHAT_ECHO.replace("got {{", "v4 {{"))
        await eventually(lambda: node.services.catalog.live_map()["echo"] != live_before, "the fix to go live")
        await visitor.say("four")
        await visitor.reply_to("v4 four")
        assert (await api.get("/api/flows")).json()["flows"][0]["last_error"] is None


async def test_a_deleted_flow_takes_no_new_conversations(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    flows = {"echo.yaml": WEBCHAT_ECHO, "other.yaml": WEBCHAT_ECHO.replace("flow: echo", "flow: other")}
    async with running_node(fx_dev_env, tmp_path, flows=flows) as node:
        assert sorted(node.services.catalog.live_map()) == ["echo", "other"]
        (node.flows_dir / "other.yaml").unlink()
        await eventually(lambda: "other" not in node.services.catalog.live_map(), "the deleted flow to be retired")
        assert "other" not in node.services.store.live_flows()
        async with chat(node) as visitor:
            await visitor.say("still here")
            await visitor.reply_to("got still here")


FAQ_FLOW = BOT_FLOW.replace("flow: faq-bot\n", "flow: faq\nchannels: [webchat]\n")
HOURS = 'entries:\n  - {{question: "When are you open?", answer: "{answer}"}}\n'


async def test_an_edit_of_a_knowledge_file_is_a_new_revision(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """The FAQ's knowledge is part of the revision: an edit goes live as a flow edit does, a broken one does not."""
    flows = {"faq.yaml": FAQ_FLOW, "kb/faq.yaml": HOURS.format(answer="Nine to five.")}
    (tmp_path / "flows" / "kb").mkdir(parents=True)
    async with running_node(fx_dev_env, tmp_path, flows=flows) as node, node.api() as api, chat(node) as visitor:
        knowledge = node.flows_dir / "kb" / "faq.yaml"
        first = node.services.catalog.live_map()["faq"]
        await visitor.say("When are you open?")
        await visitor.reply_to("Nine to five.")

        knowledge.write_text(HOURS.format(answer="Eight to six."))
        await eventually(lambda: node.services.catalog.live_map()["faq"] != first, "the knowledge edit to go live")
        await visitor.say("When are you open?")
        await visitor.reply_to("Eight to six.")  # the running conversation moved to the new revision
        revisions = (await api.get("/api/flows/faq/revisions")).json()["revisions"]
        assert revisions[0]["message"] == "knowledge kb/faq.yaml changed"
        assert revisions[0]["knowledge"].keys() == {"kb/faq.yaml"}
        assert revisions[0]["knowledge"] != revisions[1]["knowledge"]
        shown = (await api.get(f"/api/flows/faq/revisions/{first}")).json()
        assert shown["knowledge"] == {"kb/faq.yaml": HOURS.format(answer="Nine to five.")}
        diff = (await api.get("/api/flows/faq/diff", params={"from": first})).json()["diff"]
        assert f"--- kb/faq.yaml@{first[:12]}" in diff
        assert '-  - {question: "When are you open?", answer: "Nine to five."}' in diff
        assert '+  - {question: "When are you open?", answer: "Eight to six."}' in diff

        # A roll back restores the flow file; the knowledge file, which it does not touch, is named.
        second = node.services.catalog.live_map()["faq"]
        back = (await api.post("/api/flows/faq/rollback", json={"revision": first, "author": "bo"})).json()
        assert (back["revision"], back["knowledge_differs"]) == (second, ["kb/faq.yaml"])

        # A broken knowledge file: the flow that names it keeps its last good revision.
        live_before = node.services.catalog.live_map()["faq"]
        knowledge.write_text("entries:\n  - {question: no answer here}\n")

        async def reported() -> list[dict[str, object]] | None:
            error = (await api.get("/api/flows")).json()["flows"][0]["last_error"]
            return error if error else None

        (error,) = await eventually(reported, "the broken knowledge to be reported")
        assert (error["code"], error["line"], error["file"]) == ("FD212", 7, str(node.flows_dir / "faq.yaml"))
        assert "answer" in str(error["message"])
        assert node.services.catalog.live_map()["faq"] == live_before
        await visitor.say("When are you open?")
        await visitor.reply_to("Eight to six.")
