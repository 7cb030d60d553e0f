"""Offline chains answered in workflow code: the same outcome as the gateway's, from the revision alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from engine.ai import offline_chain
from engine.ai.gateway import AIGateway
from engine.flow.events import AIFailed, AIResult, CallAI
from engine.flow.model import CompiledFlow
from engine.flow.validate import compile_source
from tests.faq_support import BILINGUAL_KNOWLEDGE

AT = "2024-05-01T10:00:00Z"
INTENTS = (("refund", ("I want my money back", "refund please")), ("shipping", ("where is my parcel",)))


@pytest.fixture(name="kb_dir")
def fx_kb_dir(tmp_path: Path) -> Path:
    (tmp_path / "kb.yaml").write_text(BILINGUAL_KNOWLEDGE, encoding="utf-8")
    return tmp_path


def compile_flow(providers: list[dict[str, Any]], kb_dir: Path | None, **chain: Any) -> CompiledFlow:
    document = {
        "flow": "t",
        "ai": {"helpdesk": {"providers": providers, **chain}},
        "steps": {"listen": {"wait": "message"}, "answer": {"ai": "helpdesk", "on_error": "listen", "next": "listen"}},
    }
    result = compile_source(yaml.safe_dump(document, allow_unicode=True), "t.yaml", knowledge=kb_dir)
    assert result.flow is not None, [d.message for d in result.diagnostics]
    return result.flow


def call(text: str, flow: CompiledFlow, **fields: Any) -> CallAI:
    base: dict[str, Any] = {"call_id": "ai-1", "step": "answer", "flow": flow.name, "revision": flow.revision}
    return CallAI(chain="helpdesk", system=None, text=text, history=({"role": "user", "text": text},), **base, **fields)


def comparable(result: AIResult | AIFailed) -> dict[str, Any]:
    """What the interpreter and the message log see, without the measured latency."""
    fields = asdict(result)
    fields["attempts"] = [{k: v for k, v in a.items() if k != "latency_ms"} for a in result.attempts]
    return fields


CHAINS = {
    "echo": ([{"use": "echo"}], {}),
    "faq": ([{"use": "faq", "knowledge": "kb.yaml"}], {}),
    "faq, then echo": ([{"use": "faq", "knowledge": "kb.yaml"}, {"use": "echo"}], {}),
    "faq below min_confidence, then echo": (
        [{"use": "faq", "knowledge": "kb.yaml"}, {"use": "echo"}],
        {"min_confidence": 0.99},
    ),
}
QUESTIONS = ["How do I return an item?", "can i send my order back", "怎么退货", "Do you sell bicycles?", " "]


@pytest.mark.parametrize("chain", sorted(CHAINS))
@pytest.mark.parametrize("text", QUESTIONS)
async def test_a_pure_chain_answers_as_the_gateway_does(chain: str, text: str, kb_dir: Path) -> None:
    providers, options = CHAINS[chain]
    flow = compile_flow(providers, kb_dir, **options)
    chain_model = flow.chains["helpdesk"]
    assert offline_chain.is_pure(chain_model, flow)

    in_workflow = offline_chain.answer(call(text, flow), chain_model, flow, AT, count=False)
    from_gateway = await AIGateway(environ={}, knowledge_dir=kb_dir).answer(call(text, flow), flow, AT)

    assert comparable(in_workflow) == comparable(from_gateway)


async def test_a_chain_where_nobody_answers_fails_with_every_attempt(kb_dir: Path) -> None:
    flow = compile_flow([{"use": "faq", "knowledge": "kb.yaml"}], kb_dir)

    result = offline_chain.answer(call("Do you sell bicycles?", flow), flow.chains["helpdesk"], flow, AT, count=False)

    assert isinstance(result, AIFailed)
    assert result.reason == "failed"
    assert [(a["provider"], a["outcome"]) for a in result.attempts] == [("faq", "empty")]
    assert result.detail == "faq: empty answer"


def test_the_answer_comes_from_the_revision_not_the_file(kb_dir: Path) -> None:
    flow = compile_flow([{"use": "faq", "knowledge": "kb.yaml"}], kb_dir)
    (kb_dir / "kb.yaml").write_text("entries: [{question: Hours?, answer: Nine to five.}]\n", encoding="utf-8")

    result = offline_chain.answer(
        call("How do I return an item?", flow), flow.chains["helpdesk"], flow, AT, count=False
    )

    assert isinstance(result, AIResult)
    assert result.text == "Send it back within 30 days; the label is in your account."


@pytest.mark.parametrize(
    ("providers", "knowledge_attached"),
    [
        ([{"use": "openai", "model": "gpt-4o-mini"}], True),
        ([{"use": "faq", "knowledge": "kb.yaml"}, {"use": "openai", "model": "gpt-4o-mini"}], True),
        ([{"use": "echo", "profile": "default"}], True),
        ([{"use": "faq", "profile": "default", "knowledge": "kb.yaml"}], True),
        # a revision stored before knowledge was attached to revisions
        ([{"use": "faq", "knowledge": "kb.yaml"}], False),
    ],
    ids=["a vendor", "faq then a vendor", "echo with a profile", "faq with a profile", "faq without its knowledge"],
)
def test_a_chain_that_is_not_pure_goes_to_the_activity(
    providers: list[dict[str, Any]], knowledge_attached: bool, kb_dir: Path
) -> None:
    flow = compile_flow(providers, kb_dir if knowledge_attached else None)

    assert not offline_chain.is_pure(flow.chains["helpdesk"], flow)


def test_an_offline_chain_classifies_by_keywords_as_the_gateway_does(kb_dir: Path) -> None:
    flow = compile_flow([{"use": "faq", "knowledge": "kb.yaml"}], kb_dir)
    chain = flow.chains["helpdesk"]
    ask = call("refund please, now", flow, purpose="classify", intents=INTENTS)

    assert offline_chain.is_pure(chain, flow, "classify")
    result = offline_chain.answer(ask, chain, flow, AT, count=False)

    assert isinstance(result, AIResult)
    assert (result.text, result.provider) == ("refund", "keywords")


def test_counted_attempts_reach_the_ai_metrics(kb_dir: Path) -> None:
    label = f"echo-{uuid.uuid4().hex[:6]}"
    flow = compile_flow([{"use": "echo"}], kb_dir)
    requests, chains = "flowdesk_ai_requests_total", "flowdesk_ai_chain_outcomes_total"
    answered = {"flow": "t", "chain": "helpdesk", "outcome": "answered"}
    before = REGISTRY.get_sample_value(requests, {"provider": "echo", "outcome": "ok"}) or 0.0
    chains_before = REGISTRY.get_sample_value(chains, answered) or 0.0

    offline_chain.answer(call(label, flow), flow.chains["helpdesk"], flow, AT, count=False)
    offline_chain.answer(call(label, flow), flow.chains["helpdesk"], flow, AT, count=True)

    assert REGISTRY.get_sample_value(requests, {"provider": "echo", "outcome": "ok"}) == before + 1
    assert REGISTRY.get_sample_value(chains, answered) == chains_before + 1


#: Answers every question of the shipped knowledge file, and a few near misses, as JSON.
_ANSWER_ALL = """
import json, sys
from pathlib import Path
from engine.flow.knowledge import parse_knowledge
text = Path("flows/kb/faq.yaml").read_text(encoding="utf-8")
kb = parse_knowledge(text, "kb/faq.yaml")
asked = [q for e in kb.entries for q in (e.question, *e.alternatives)]
asked += [q.lower().rstrip("?？") + " please" for q in asked] + ["where is my parcel", "退款多久到账"]
found = [kb.rank(q) for q in asked]
json.dump(found, sys.stdout)
"""


def test_faq_answers_do_not_depend_on_the_process(tmp_path: Path) -> None:
    """Workflow code must answer alike on every worker: string hashing differs per process."""
    root = Path(__file__).resolve().parents[3]
    runs = [
        subprocess.run(
            [sys.executable, "-c", _ANSWER_ALL],
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    ]
    assert json.loads(runs[0])  # the knowledge answered something
    assert runs[0] == runs[1] == runs[2]


def test_a_large_knowledge_file_is_left_to_the_activity(tmp_path: Path) -> None:
    """Parsing and matching a large file would hold up the workflow task (Temporal cuts it off at 2 s)."""
    entry = '  - {{question: "How do I do thing {n}?", answer: "{answer}"}}\n'
    big = "entries:\n" + "".join(entry.format(n=n, answer="Step by step. " * 40) for n in range(1200))
    assert len(big) > offline_chain.MAX_IN_WORKFLOW_KNOWLEDGE
    (tmp_path / "kb.yaml").write_text(big, encoding="utf-8")

    flow = compile_flow([{"use": "faq", "knowledge": "kb.yaml"}], tmp_path)

    assert flow.knowledge  # attached to the revision all the same
    assert not offline_chain.is_pure(flow.chains["helpdesk"], flow)
