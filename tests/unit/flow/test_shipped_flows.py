"""Everything Flowdesk ships as an example of the flow language works as shown.

The demo under flows/, the examples under examples/ and every YAML example of
docs/flows.md validate; the settings files validate; the docs list every
diagnostic code; and every flow test written in those places passes.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from engine.flow.codes import CODES
from engine.flow.context import FlowSet, InterpreterContext
from engine.flow.faq_knowledge import FaqKnowledge
from engine.flow.installation import Installation
from engine.flow.load import load_document
from engine.flow.schema_check import settings_validator
from engine.flow.validate import compile_paths, compile_source, discover, is_data_file
from engine.flowtest.report import TestResult
from engine.flowtest.runner import run_flow_test, run_tests
from engine.pipeline.runner import Pipelines
from engine.pipeline.types import Message
from engine.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs" / "flows.md"
SCHEMA = ROOT / "schemas" / "flow.schema.json"

#: Each directory of shipped flows and the settings its flows expect.
PROJECTS = {
    "flows": ROOT / "flowdesk.yaml",
    "examples": ROOT / "examples" / "flowdesk.yaml",
}
#: Where each project's flows are. The plugin example (examples/plugin) needs its
#: package installed; tests/integration/test_plugin_package.py validates and runs it.
FLOW_DIRS = {"flows": ROOT / "flows", "examples": ROOT / "examples" / "flows"}

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$", re.MULTILINE)


def _flow_files(directory: str) -> list[Path]:
    flows, tests = discover([FLOW_DIRS[directory]])
    found = [path for path, _ in flows if not is_data_file(load_document(path.read_bytes(), str(path))[0])]
    return sorted(found + tests)


def _yaml_blocks() -> list[tuple[int, str, str]]:
    """(line, info string, body) of every ```yaml... fenced block in docs/flows.md."""
    text = DOCS.read_text(encoding="utf-8")
    blocks = []
    for match in _FENCE.finditer(text):
        info = match.group(1).strip()
        if info.split(" ")[0] == "yaml":
            blocks.append((text.count("\n", 0, match.start()) + 1, info, match.group(2)))
    return blocks


def _docs_installation() -> Installation:
    """The demo's settings plus the AI profiles the docs' settings fragments show: what the examples assume."""
    installation = Settings.load(PROJECTS["flows"], environ={}).installation()
    shown: set[str] = set()
    for _, info, body in _yaml_blocks():
        data = yaml.safe_load(body) if info == "yaml fragment" else None
        if isinstance(data, dict) and isinstance(data.get("ai_profiles"), dict):
            shown |= set(data["ai_profiles"])
    return replace(installation, ai_profiles=installation.ai_profiles | shown)


def _describe(results: list[TestResult]) -> str:
    lines = []
    for result in results:
        if result.failure is not None:
            lines.append(f"FAIL {result.label} ({result.file})")
            lines += [f"    {line}" for line in result.failure.lines()]
    return "\n".join(lines)


# -- (a) shipped flows validate without errors or warnings ---------------------------


@pytest.mark.parametrize("directory", sorted(PROJECTS))
def test_shipped_flows_validate_cleanly(directory: str) -> None:
    # Against their own settings, so calendars, settings.* and AI profiles are checked too.
    installation = Settings.load(PROJECTS[directory], environ={}).installation()
    project = compile_paths([FLOW_DIRS[directory]], installation=installation)
    assert project.flows, f"no flows found under {directory}/"
    problems = [d.format() for d in project.diagnostics]
    assert problems == [], "\n".join(problems)
    assert all(result.ok for result in project.flows)


def test_the_demo_is_the_shop_support_flow() -> None:
    project = compile_paths([ROOT / "flows"])
    flows = {r.flow.name: r.flow for r in project.flows if r.flow is not None}
    demo = flows["shop-support"]
    assert demo.channels == ("*",)
    assert [stage.processor for stage in demo.inbound] == ["normalize", "sensitive_words", "pii_redact", "rate_limit"]
    # the demo's word lists (flowdesk.yaml) are found, and mask what the demo's customers write
    pipelines = Pipelines(word_lists=Settings.load(PROJECTS["flows"], environ={}).word_lists())
    result = pipelines.run(demo, "in", Message(id="m", text="you  IDIOT, 笨蛋!", channel="webchat"))
    assert result.notes == []
    assert result.message.text == "you *****, **!"
    assert [p.use for p in demo.chains["helpdesk"].providers] == ["openai", "faq"]
    kinds = {step.kind.value for step in demo.steps.values()}
    assert {"ask", "wait", "switch", "ai", "http", "handoff", "end", "say"} <= kinds
    assert len(demo.tests) >= 6


def test_examples_cover_the_other_constructs() -> None:
    project = compile_paths([FLOW_DIRS["examples"]])
    flows = {r.flow.name: r.flow for r in project.flows if r.flow is not None}
    assert {"intent-router", "after-hours", "multilingual", "support-menu", "collect-contact"} <= set(flows)
    kinds = {step.kind.value for flow in flows.values() for step in flow.steps.values()}
    assert {"classify", "call", "goto_flow", "handoff", "wait", "ask", "switch"} <= kinds
    assert any(t.flow_id == "collect-contact" for t in project.test_files), "a *.test.yaml example is missing"


SHIPPED_FILES = [*_flow_files("flows"), *_flow_files("examples")]


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_schema_line_points_at_the_schema(path: Path) -> None:
    match = _MODELINE.search(path.read_text(encoding="utf-8"))
    assert match is not None, f"{path} lacks `# yaml-language-server: $schema=...`"
    target, _, fragment = match.group(1).partition("#")
    assert (path.parent / target).resolve() == SCHEMA
    if fragment:
        node = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
        for part in fragment.strip("/").split("/"):
            node = node[part]


def test_faq_knowledge_is_bilingual_and_answers() -> None:
    knowledge = FaqKnowledge.load(ROOT / "flows" / "kb" / "faq.yaml")
    assert 10 <= len(knowledge.entries) <= 15
    chinese = [e for e in knowledge.entries if re.search("[\u4e00-\u9fff]", e.question)]
    assert 0 < len(chinese) < len(knowledge.entries)
    for question in ("How much does shipping cost?", "怎么退货", "I forgot my password", "支持支付宝吗"):
        assert knowledge.answer(question) is not None, question


# -- (b) every YAML example of the docs validates -------------------------------------


def test_docs_have_complete_flow_examples() -> None:
    complete = [b for b in _yaml_blocks() if b[1] == "yaml"]
    assert len(complete) >= 10


@pytest.mark.parametrize(
    ("line", "info", "body"), [pytest.param(*block, id=f"flows.md-line-{block[0]}") for block in _yaml_blocks()]
)
def test_docs_yaml_example_validates(line: int, info: str, body: str) -> None:
    if info != "yaml":
        assert info == "yaml fragment", f"docs/flows.md:{line}: use ```yaml or ```yaml fragment, not ```{info}"
        return
    data = yaml.safe_load(body)
    assert isinstance(data, dict) and {"flow", "steps"} <= set(data), (
        f"docs/flows.md:{line}: a ```yaml block must be a complete flow; fence excerpts as ```yaml fragment"
    )
    result = compile_source(body, f"docs/flows.md:{line}", installation=_docs_installation())
    errors = [d.format() for d in result.diagnostics if d.is_error]
    assert errors == [], "\n".join(errors)
    # Tests written in a docs example pass too.
    flow = result.flow
    assert flow is not None
    settings = Settings.load(PROJECTS["flows"])
    ctx = InterpreterContext(FlowSet([flow]), settings.flow_settings())
    results = [run_flow_test(ctx, flow, test.data) for test in flow.tests]
    assert all(r.passed for r in results), _describe(results)


# -- (c) settings files validate ----------------------------------------------------------


@pytest.mark.parametrize("path", sorted(PROJECTS.values()), ids=lambda p: str(p.relative_to(ROOT)))
def test_settings_file_validates(path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in settings_validator().iter_errors(data)]
    assert errors == [], "\n".join(errors)
    # Loaded the way the commands load it, calendars included.
    settings = Settings.load(path, environ={})
    assert settings.flow_settings().calendars


def test_demo_settings() -> None:
    settings = Settings.load(PROJECTS["flows"], environ={})
    assert settings.brand == "Demo Shop"
    # No shop to point at: `flowdesk serve` answers order lookups itself (demo data only).
    assert settings.get("demo", "order_api") is True and settings.get("values", "shop_api") is None
    assert settings.get("ai_profiles", "default", "api_key") == "${env:OPENAI_API_KEY}"
    calendar = settings.flow_settings().calendars["support"]
    assert calendar.timezone == "Europe/Berlin"


# -- (d) the docs list every diagnostic code ----------------------------------------------


def test_docs_list_every_diagnostic_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [code for code in CODES if code not in text]
    assert missing == [], f"docs/flows.md does not mention {', '.join(missing)}"


def test_docs_code_table_matches_the_catalogue() -> None:
    rows = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| FD") and len(cells) >= 3:
            rows[cells[0]] = (cells[1], cells[2])
    for code, entry in CODES.items():
        assert rows.get(code) == (entry.severity.value, entry.title), f"the table row of {code} is out of date"


# -- (e) every shipped flow test passes -----------------------------------------------------


@pytest.mark.parametrize("directory", sorted(PROJECTS))
def test_shipped_flow_tests_pass(directory: str) -> None:
    settings = Settings.load(PROJECTS[directory], environ={})
    project = compile_paths([FLOW_DIRS[directory]])
    pipelines = Pipelines(word_lists=settings.word_lists())
    results = run_tests(project, settings=settings.public(), pipelines=pipelines)
    assert results, f"no flow tests under {directory}/"
    assert all(r.passed for r in results), _describe(results)
    tested = {r.flow for r in results}
    untested = {r.flow.name for r in project.flows if r.flow is not None} - tested
    assert untested == set(), f"flows without tests: {', '.join(sorted(untested))}"
