"""Validation and compilation of flow files: the one entry point for every caller.

``compile_source`` runs the layers in order — read YAML with positions, JSON
Schema, then semantics and expressions — and builds a :class:`CompiledFlow` when
nothing is an error. ``compile_paths`` does the same for files and directories and
adds the checks that need the whole set (duplicate ids, ``call`` targets, flows
that compete for a channel). Given an :class:`Installation`, names the settings
define (calendars, ``settings.x``, AI profiles) are checked as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath

from engine.errors import Diagnostic
from engine.flow.codes import make
from engine.flow.compile import build_flow
from engine.flow.expr_check import ExpressionChecker
from engine.flow.installation import Installation
from engine.flow.knowledge import KnowledgeUnusable, knowledge_refs, read_knowledge
from engine.flow.load import LoadedDocument, json_path, load_document
from engine.flow.model import CompiledFlow
from engine.flow.overlap import overlapping_flows
from engine.flow.schema_check import flow_validator, schema_diagnostics, test_file_validator
from engine.flow.semantics import SemanticChecker
from engine.flow.vocabulary import DEFAULT_VOCABULARY, Vocabulary

FLOW_SUFFIXES = (".yaml", ".yml")
TEST_SUFFIXES = (".test.yaml", ".test.yml")


@dataclass
class CompileResult:
    """The outcome for one file: the compiled flow (if no errors) and all findings."""

    file: str
    flow: CompiledFlow | None
    diagnostics: list[Diagnostic]
    document: LoadedDocument | None = None

    @property
    def ok(self) -> bool:
        return self.flow is not None and not any(d.is_error for d in self.diagnostics)


@dataclass
class TestFileResult:
    """A ``*.test.yaml`` file: which flow its tests are for, and its findings."""

    file: str
    flow_id: str | None
    tests: list[dict[str, object]]
    diagnostics: list[Diagnostic]
    document: LoadedDocument | None = None


@dataclass
class ProjectResult:
    """Flows and test files from a set of paths."""

    flows: list[CompileResult] = field(default_factory=list)
    test_files: list[TestFileResult] = field(default_factory=list)
    #: what the flows were checked against; None: the installation checks were skipped
    installation: Installation | None = None

    @property
    def diagnostics(self) -> list[Diagnostic]:
        found = [d for r in self.flows for d in r.diagnostics]
        found += [d for t in self.test_files for d in t.diagnostics]
        return found

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def _sorted(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=lambda d: (d.file, d.line, d.column, d.code))


#: Where a flow's knowledge texts come from: a directory its paths are relative to
#: (read and checked: a missing or broken file is an error), the texts a stored
#: revision was saved with (attached as found), or nowhere.
KnowledgeSource = FsPath | Mapping[str, str] | None


def compile_source(
    raw: bytes | str,
    file: str = "<flow>",
    *,
    vocabulary: Vocabulary = DEFAULT_VOCABULARY,
    knowledge: KnowledgeSource = None,
    installation: Installation | None = None,
) -> CompileResult:
    """Validate and compile one flow file's content."""
    doc, diagnostics = load_document(raw, file)
    if doc is None:
        return CompileResult(file, None, diagnostics)
    return compile_document(doc, vocabulary=vocabulary, knowledge=knowledge, installation=installation)


def compile_document(
    doc: LoadedDocument,
    *,
    vocabulary: Vocabulary = DEFAULT_VOCABULARY,
    knowledge: KnowledgeSource = None,
    installation: Installation | None = None,
) -> CompileResult:
    """Validate and compile a flow file that has already been read."""
    file = doc.file
    if not isinstance(doc.data, dict):
        return CompileResult(
            file,
            None,
            [make("FD110", "a flow file must be a mapping with `flow:` and `steps:`", file=file, line=1, column=1)],
            doc,
        )
    found = schema_diagnostics(doc, flow_validator())
    if not found:
        # Later layers assume the shapes the schema guarantees.
        found = SemanticChecker(doc, vocabulary, installation).run() + ExpressionChecker(doc, installation).run()
    texts: dict[str, str] = {}
    if not any(d.is_error for d in found):
        texts, problems = _knowledge(doc, knowledge)
        found += problems
    found = _sorted(found)
    if any(d.is_error for d in found):
        return CompileResult(file, None, found, doc)
    return CompileResult(file, build_flow(doc.data, file=file, source=doc.text, knowledge=texts), found, doc)


def _knowledge(doc: LoadedDocument, source: KnowledgeSource) -> tuple[dict[str, str], list[Diagnostic]]:
    """The knowledge texts to attach to the flow, and the problems of the files that cannot be."""
    texts: dict[str, str] = {}
    problems: list[Diagnostic] = []
    if source is None:
        return texts, problems
    for ref in knowledge_refs(doc.data):
        if ref.path in texts:
            continue
        if not isinstance(source, FsPath):
            if ref.path in source:
                texts[ref.path] = source[ref.path]
            continue
        try:
            texts[ref.path] = read_knowledge(source, ref.path)
        except KnowledgeUnusable as exc:
            pos = doc.position(ref.where)
            problems.append(
                make("FD212", str(exc), file=doc.file, line=pos.line, column=pos.column, path=json_path(ref.where))
            )
    return texts, problems


def load_test_file(raw: bytes | str, file: str) -> TestFileResult:
    """Read a ``*.test.yaml`` file (``flow:`` + ``tests:``)."""
    doc, diagnostics = load_document(raw, file)
    if doc is None:
        return TestFileResult(file, None, [], diagnostics)
    if not isinstance(doc.data, dict):
        message = "a test file must be a mapping with `flow:` and `tests:`"
        return TestFileResult(file, None, [], [make("FD110", message, file=file, line=1, column=1)], doc)
    found = schema_diagnostics(doc, test_file_validator())
    if found:
        return TestFileResult(file, None, [], found, doc)
    return TestFileResult(file, doc.data["flow"], list(doc.data["tests"]), [], doc)


def discover(paths: Iterable[str | FsPath]) -> tuple[list[tuple[FsPath, bool]], list[FsPath]]:
    """Flow files (with whether they were named explicitly) and test files, in a stable order."""
    flows: list[tuple[FsPath, bool]] = []
    tests: list[FsPath] = []
    for raw in paths:
        path = FsPath(raw)
        if not path.is_dir():
            (tests.append(path) if path.name.endswith(TEST_SUFFIXES) else flows.append((path, True)))
            continue
        for candidate in sorted(p for p in path.rglob("*") if p.is_file()):
            if candidate.name.endswith(TEST_SUFFIXES):
                tests.append(candidate)
            elif candidate.name.endswith(FLOW_SUFFIXES):
                flows.append((candidate, False))
    return flows, tests


def is_data_file(doc: LoadedDocument | None) -> bool:
    """YAML found in a flows directory that is not a flow: a knowledge file, a word list.

    A file counts as a flow when its top level has `flow:` or `steps:`; a broken
    flow still has one of them, so it is reported rather than skipped.
    """
    return doc is not None and not (isinstance(doc.data, dict) and ({"flow", "steps"} & set(doc.data)))


def _root_of(path: FsPath, roots: list[FsPath]) -> FsPath:
    """The directory argument ``path`` was found under, else its own directory."""
    return next((root for root in roots if path.is_relative_to(root)), path.parent)


def _read(path: FsPath) -> tuple[bytes | None, Diagnostic | None]:
    try:
        return path.read_bytes(), None
    except OSError as exc:
        return None, make(
            "FD100",
            f"cannot read the file: {exc.strerror or exc}",
            file=str(path),
            line=1,
            column=1,
            hint="check that the path exists and is readable",
        )


def _report_overlaps(results: list[CompileResult]) -> None:
    """FD306 on each flow that another flow shadows: same channel, same priority, no `when`."""
    compiled = {r.flow.name: r for r in results if r.flow is not None}
    for overlap in overlapping_flows([r.flow for r in compiled.values() if r.flow is not None]):
        loser, winner = compiled[overlap.loser.name], compiled[overlap.winner.name]
        document = loser.document
        pos = document.position(("channels",), key=True) if document else None
        loser.diagnostics.append(
            make(
                "FD306",
                f"flows {overlap.winner.name!r} ({winner.file}) and {overlap.loser.name!r} both take new"
                f" conversations on {overlap.describe_channels()} at priority {overlap.priority} with no `when`:"
                f" {overlap.winner.name!r} always wins (ties go to the first id in alphabetical order),"
                f" so {overlap.loser.name!r} never starts one there",
                file=loser.file,
                line=pos.line if pos else 1,
                column=pos.column if pos else 1,
                path="$.channels",
                hint=f"to choose, give one of them a higher `priority:` (e.g. `priority: {overlap.priority + 1}`"
                f" on {overlap.loser.name!r} makes it win) or a `when:` guard that says which conversations it takes",
            )
        )
        loser.diagnostics = _sorted(loser.diagnostics)


def compile_paths(
    paths: Iterable[str | FsPath],
    *,
    vocabulary: Vocabulary = DEFAULT_VOCABULARY,
    knowledge_dir: FsPath | None = None,
    installation: Installation | None = None,
) -> ProjectResult:
    """Validate and compile every flow (and read every test file) under ``paths``.

    Knowledge paths are relative to ``knowledge_dir`` (the flows directory of a
    server), else to the directory a flow file was found in, else to the file's own.
    """
    paths = list(paths)
    flow_files, test_files = discover(paths)
    roots = [FsPath(p) for p in paths if FsPath(p).is_dir()]
    result = ProjectResult(installation=installation)
    ids: set[str] = set()
    docs: list[tuple[FsPath, LoadedDocument | None, list[Diagnostic]]] = []
    for path, explicit in flow_files:
        raw, problem = _read(path)
        if raw is None:
            assert problem is not None
            result.flows.append(CompileResult(str(path), None, [problem]))
            continue
        doc, problems = load_document(raw, str(path))
        if not explicit and is_data_file(doc):
            continue
        docs.append((path, doc, problems))
        if doc is not None and isinstance(doc.data, dict) and isinstance(doc.data.get("flow"), str):
            ids.add(doc.data["flow"])
    known = vocabulary.with_flows(frozenset(ids))
    owners: dict[str, str] = {}
    for path, doc, problems in docs:
        compiled = (
            compile_document(
                doc, vocabulary=known, knowledge=knowledge_dir or _root_of(path, roots), installation=installation
            )
            if doc is not None
            else CompileResult(str(path), None, problems)
        )
        if compiled.flow is not None:
            first = owners.setdefault(compiled.flow.name, str(path))
            if first != str(path):
                pos = compiled.document.position(("flow",)) if compiled.document else None
                compiled.diagnostics.append(
                    make(
                        "FD207",
                        f"flow id {compiled.flow.name!r} is already used by {first}",
                        file=str(path),
                        line=pos.line if pos else 1,
                        column=pos.column if pos else 1,
                        path="$.flow",
                    )
                )
                compiled.flow = None
        result.flows.append(compiled)
    _report_overlaps(result.flows)
    for path in test_files:
        raw, problem = _read(path)
        if raw is None:
            assert problem is not None
            result.test_files.append(TestFileResult(str(path), None, [], [problem]))
            continue
        result.test_files.append(load_test_file(raw, str(path)))
    return result
