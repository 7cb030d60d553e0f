"""FD217: a hand-off to a queue that the settings, which describe queues, do not describe."""

from __future__ import annotations

import textwrap
from pathlib import Path

from engine.flow.installation import Installation
from engine.flow.validate import compile_source
from engine.settings import Settings

QUEUES = Installation(queues=frozenset({"support", "billing"}), source="flowdesk.yaml")

FLOW = """
flow: desk
steps:
  listen: { wait: message }
  first: { handoff: { queue: suport }, next: second }
  second: { handoff: billing, next: third }
  third: { handoff: { timeout: 1m }, on_timeout: listen, next: listen }
"""


def _found(installation: Installation | None) -> list[str]:
    result = compile_source(textwrap.dedent(FLOW).lstrip("\n"), "t.yaml", installation=installation)
    assert result.flow is not None  # a warning: the flow still goes live
    return [
        f"{d.code} {d.severity.value} {d.line} {d.message} | {d.hint}" for d in result.diagnostics if d.code == "FD217"
    ]


def test_an_undescribed_queue_is_a_warning_with_did_you_mean() -> None:
    typo, default = _found(QUEUES)
    assert typo == (
        "FD217 warning 4 hand-off to queue 'suport': no such queue is described in flowdesk.yaml"
        " (known: 'billing', 'support') | did you mean 'support'?"
    )
    # a hand-off without a queue goes to `default`, which these settings do not describe
    assert default.startswith("FD217 warning 6 hand-off to queue 'default'")
    assert default.endswith("describe it under `queues:` in flowdesk.yaml or through the API (POST /api/queues)")


def test_settings_that_describe_no_queue_leave_queues_to_the_admins() -> None:
    assert _found(Installation(source="flowdesk.yaml")) == []
    assert _found(None) == []


def test_the_installation_learns_the_queues_of_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "flowdesk.yaml"
    path.write_text("queues:\n  support: {name: Support}\n  billing: {}\n", encoding="utf-8")
    assert Settings.load(path, environ={}).installation().queues == frozenset({"support", "billing"})
    path.write_text("brand: Shop\n", encoding="utf-8")
    assert Settings.load(path, environ={}).installation().queues is None
