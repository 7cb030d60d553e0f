"""Every shipped flow test, run both ways: in-process (the simulator) and live (the runtime).

The same test must pass both ways and the bot must send the same texts both ways:
a test that passes in-process but says something else through the workflow, the
activities and the message path is a difference between simulator and runtime, and
fails here with both lists of texts.

Collected per project: flows/ with ./flowdesk.yaml, examples/flows with
examples/flowdesk.yaml, and every complete flow of docs/*.md that carries
``tests:`` (on the demo's settings, as tests/unit/flow/test_shipped_flows.py runs
them). Each project is played once per way, on one ``LiveTests`` server for the
module and one live session per project; the tests only compare.

Not here: the plugin example (examples/plugin and its ``tests:`` fragment in
docs/plugins.md) needs its package installed; tests/integration/test_plugin_package.py
installs and runs it. docs ``yaml fragment`` blocks are excerpts, not flows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from engine.flow.context import InterpreterContext
from engine.flow.model import CompiledFlow
from engine.flow.validate import ProjectResult, compile_paths, compile_source
from engine.flowtest.driver import DriverFactory, SimulatorDriver, TurnDriver
from engine.flowtest.report import TestResult
from engine.flowtest.runner import run_tests
from engine.livetest import LiveTests, channels_of_tests
from engine.pipeline.runner import Pipelines
from engine.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEMO_SETTINGS = ROOT / "flowdesk.yaml"
#: Directories of shipped flows and the settings their flows expect.
DIRECTORIES = {
    "flows": (ROOT / "flows", DEMO_SETTINGS),
    "examples": (ROOT / "examples" / "flows", ROOT / "examples" / "flowdesk.yaml"),
}
#: Where complete docs examples are (docs/plugins.md shows only fragments of the plugin example).
DOCS = sorted((ROOT / "docs").glob("*.md"))

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_TESTS = re.compile(r"^tests:", re.MULTILINE)


@dataclass(frozen=True)
class Project:
    """Flows that are tested together, with the settings they are tested on."""

    project: ProjectResult
    settings: Settings


@dataclass(frozen=True)
class Outcome:
    """One test run one way: its result and every text the bot sent."""

    result: TestResult
    texts: list[str]

    def describe(self) -> str:
        if self.result.failure is None:
            return "passed"
        return "failed:\n" + "\n".join(f"    {line}" for line in self.result.failure.lines())


#: A project's key -> each test's label -> (in-process, live).
Played = Callable[[str], dict[str, tuple["Outcome", "Outcome"]]]


def _docs_projects() -> dict[str, Project]:
    found = {}
    settings = Settings.load(DEMO_SETTINGS, environ={})
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            if match.group(1).strip() != "yaml" or not _TESTS.search(match.group(2)):
                continue
            where = f"docs/{doc.name}:{text.count(chr(10), 0, match.start()) + 1}"
            compiled = compile_source(match.group(2), where, installation=settings.installation())
            found[where] = Project(ProjectResult(flows=[compiled]), settings)
    return found


@cache
def projects() -> dict[str, Project]:
    found = {}
    for key, (directory, settings_file) in DIRECTORIES.items():
        settings = Settings.load(settings_file, environ={})
        found[key] = Project(compile_paths([directory], installation=settings.installation()), settings)
    return found | _docs_projects()


def _test_ids() -> list[Any]:
    """``project/flow: test`` for every test: a new flow test anywhere shows up by itself."""
    params = []
    for key, item in projects().items():
        labels = [f"{r.flow.name}: {t.name}" for r in item.project.flows if r.flow is not None for t in r.flow.tests]
        labels += [f"{f.flow_id}: {t.get('name', '?')}" for f in item.project.test_files for t in f.tests]
        params += [pytest.param(key, label, id=f"{key}/{label}") for label in labels]
    return params


class Recorder:
    """Wraps a driver factory and keeps each test's driver, to read the texts it saw afterwards."""

    def __init__(self, factory: DriverFactory) -> None:
        self.factory = factory
        self.drivers: dict[str, TurnDriver] = {}

    def __call__(
        self, ctx: InterpreterContext, flow: CompiledFlow, test: Mapping[str, Any], pipelines: Pipelines | None
    ) -> TurnDriver:
        driver = self.factory(ctx, flow, test, pipelines)
        self.drivers[f"{flow.name}: {test.get('name', '?')}"] = driver
        return driver

    def outcomes(self, results: list[TestResult]) -> dict[str, Outcome]:
        found = {}
        for result in results:
            driver = self.drivers.get(result.label)
            found[result.label] = Outcome(result, driver.bot_texts() if driver is not None else [])
        return found


def _both_ways(live: LiveTests, item: Project) -> dict[str, tuple[Outcome, Outcome]]:
    public = item.settings.public()
    offline = Recorder(SimulatorDriver)
    pipelines = Pipelines(word_lists=item.settings.word_lists())
    offline_results = run_tests(item.project, settings=public, pipelines=pipelines, driver=offline)
    flows = [r.flow for r in item.project.flows if r.flow is not None]
    # What LiveTests.run_tests does, with the session's driver factory wrapped to record.
    with live.session(flows, item.settings, channels_of_tests(item.project)) as session:
        online = Recorder(session.driver)
        live_results = run_tests(item.project, settings=public, pipelines=session.pipelines, driver=online)
        # Read while the session's channel still holds the conversations' texts.
        live_outcomes = online.outcomes(live_results)
    offline_outcomes = offline.outcomes(offline_results)
    return {label: (offline_outcomes[label], live_outcomes[label]) for label in offline_outcomes}


@pytest.fixture(scope="module", name="fx_live")
def fixture_live() -> Iterator[LiveTests]:
    with LiveTests() as live:
        yield live


@pytest.fixture(scope="module", name="fx_outcomes")
def fixture_outcomes(fx_live: LiveTests) -> Played:
    """Each project played both ways once, on first use."""
    played: dict[str, dict[str, tuple[Outcome, Outcome]]] = {}

    def outcomes(key: str) -> dict[str, tuple[Outcome, Outcome]]:
        if key not in played:
            played[key] = _both_ways(fx_live, projects()[key])
        return played[key]

    return outcomes


def test_every_project_has_tests() -> None:
    # So that a collection that finds nothing cannot pass as "all tests agree".
    assert {"flows", "examples"} <= set(projects())
    assert any(key.startswith("docs/") for key in projects()), "no complete docs example with tests:"
    assert len(_test_ids()) >= 30


@pytest.mark.parametrize(("key", "label"), _test_ids())
def test_flow_test_both_ways(key: str, label: str, fx_outcomes: Played) -> None:
    offline, live = fx_outcomes(key)[label]
    assert offline.result.passed, f"in-process {offline.describe()}"
    assert live.result.passed == offline.result.passed, (
        f"in-process {offline.describe()}\nlive {live.describe()}\n"
        f"in-process texts: {offline.texts!r}\nlive texts:       {live.texts!r}"
    )
    assert live.texts == offline.texts, (
        f"the bot said different things live\nin-process: {offline.texts!r}\nlive:       {live.texts!r}"
    )
