"""Knowledge files belong to the flow revision: read, checked and hashed with the flow."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.flow.compile import revision_of
from engine.flow.validate import compile_paths, compile_source
from engine.runtime.revisions import CompiledFlows, FileRevisionStore, FlowCatalog
from tests.faq_support import FAQ_FLOW as FLOW

KNOWLEDGE = 'entries:\n  - {question: "When are you open?", answer: "Nine to five."}\n'


@pytest.fixture(name="flows_dir")
def fx_flows_dir(tmp_path: Path) -> Path:
    flows = tmp_path / "flows"
    (flows / "kb").mkdir(parents=True)
    (flows / "faq-bot.yaml").write_text(FLOW, encoding="utf-8")
    (flows / "kb" / "faq.yaml").write_text(KNOWLEDGE, encoding="utf-8")
    return flows


def compiled(flows_dir: Path) -> tuple[str, dict[str, str]]:
    (result,) = compile_paths([flows_dir], knowledge_dir=flows_dir).flows
    assert result.flow is not None, [d.format() for d in result.diagnostics]
    return result.flow.revision, dict(result.flow.knowledge)


def test_the_knowledge_text_is_attached_and_hashed_with_the_flow(flows_dir: Path) -> None:
    revision, knowledge = compiled(flows_dir)
    assert knowledge == {"kb/faq.yaml": KNOWLEDGE}

    (flows_dir / "kb" / "faq.yaml").write_text(KNOWLEDGE + '  - {question: "Do you ship abroad?", answer: "Yes."}\n')
    edited, _ = compiled(flows_dir)
    (flows_dir / "kb" / "faq.yaml").write_text(KNOWLEDGE)
    again, _ = compiled(flows_dir)

    assert edited != revision  # an edit of the knowledge is a new revision
    assert again == revision  # and the same texts are the same revision


def test_a_flow_without_knowledge_keeps_the_revision_it_always_had(tmp_path: Path) -> None:
    source = FLOW.replace("- use: faq\n        knowledge: kb/faq.yaml", "- use: echo")
    result = compile_source(source, "echo.yaml", knowledge=tmp_path)

    assert result.flow is not None
    assert result.flow.knowledge == {}
    assert result.flow.revision == revision_of(result.document.data if result.document else {})


@pytest.mark.parametrize(
    ("knowledge", "expected"),
    [
        (None, "knowledge file 'kb/faq.yaml' not found"),
        ("entries: [", "invalid YAML"),
        ("entries: []\n", "expected a non-empty list of entries"),
        ('entries:\n  - {question: "Hours?"}\n', "answer"),
    ],
    ids=["missing", "not YAML", "no entries", "an entry without an answer"],
)
def test_an_unusable_knowledge_file_is_an_error_at_the_line_that_names_it(
    flows_dir: Path, knowledge: str | None, expected: str
) -> None:
    target = flows_dir / "kb" / "faq.yaml"
    if knowledge is None:
        target.unlink()
    else:
        target.write_text(knowledge, encoding="utf-8")

    # (A knowledge file that is not YAML is also reported for itself, as any file there.)
    results = compile_paths([flows_dir], knowledge_dir=flows_dir).flows
    (result,) = [r for r in results if r.file.endswith("faq-bot.yaml")]

    assert result.flow is None
    (problem,) = result.diagnostics
    assert (problem.code, problem.line, problem.column) == ("FD212", 6, 20)
    assert expected in problem.message
    assert problem.path == "$.ai.helpdesk.providers[0].knowledge"


@pytest.mark.parametrize("path", ["/etc/passwd", "../secrets.yaml", "kb/../../secrets.yaml"])
def test_a_knowledge_file_outside_the_flows_directory_is_refused(flows_dir: Path, path: str) -> None:
    (flows_dir.parent / "secrets.yaml").write_text(KNOWLEDGE, encoding="utf-8")  # valid, but not the flows'
    (flows_dir / "faq-bot.yaml").write_text(FLOW.replace("kb/faq.yaml", path))

    (result,) = compile_paths([flows_dir], knowledge_dir=flows_dir).flows

    assert result.flow is None
    (problem,) = result.diagnostics
    assert problem.code == "FD212" and "outside the flows directory" in problem.message


def test_a_link_out_of_the_flows_directory_is_refused(flows_dir: Path) -> None:
    (flows_dir.parent / "secrets.yaml").write_text(KNOWLEDGE, encoding="utf-8")
    (flows_dir / "kb" / "faq.yaml").unlink()
    (flows_dir / "kb" / "faq.yaml").symlink_to(flows_dir.parent / "secrets.yaml")

    (result,) = compile_paths([flows_dir], knowledge_dir=flows_dir).flows

    assert result.flow is None and "outside the flows directory" in result.diagnostics[0].message


def test_a_profile_s_knowledge_is_not_the_flow_s(flows_dir: Path) -> None:
    (flows_dir / "faq-bot.yaml").write_text(FLOW.replace("- use: faq", "- use: faq\n        profile: faq"))
    (flows_dir / "kb" / "faq.yaml").unlink()

    _, knowledge = compiled(flows_dir)

    assert knowledge == {}


def test_a_stored_revision_compiles_with_its_knowledge_on_any_worker(flows_dir: Path, tmp_path: Path) -> None:
    catalog = FlowCatalog(FileRevisionStore(tmp_path / "revisions"))
    assert catalog.publish_dir([flows_dir], knowledge_dir=flows_dir) == []
    revision = catalog.live_map()["faq-bot"]
    (flows_dir / "kb" / "faq.yaml").unlink()  # gone from disk: the revision still has it

    elsewhere = CompiledFlows(FileRevisionStore(tmp_path / "revisions")).get("faq-bot", revision)

    assert elsewhere.revision == revision
    assert elsewhere.knowledge == {"kb/faq.yaml": KNOWLEDGE}


def test_a_revision_stored_without_knowledge_compiles_as_before(tmp_path: Path) -> None:
    store = FileRevisionStore(tmp_path / "revisions")
    legacy = compile_source(FLOW, "faq-bot.yaml")  # what revisions were before knowledge was attached
    assert legacy.flow is not None
    store.put(legacy.flow.revision, FLOW)

    loaded = CompiledFlows(store).get("faq-bot", legacy.flow.revision)

    assert (loaded.revision, dict(loaded.knowledge)) == (legacy.flow.revision, {})
