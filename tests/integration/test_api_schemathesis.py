"""Schemathesis, every check, against the API's own OpenAPI document on a running node.

The run is what ``st run --checks all`` does (examples, coverage, fuzzing and
stateful phases), in this process, with a bearer token, a fixed seed and a bounded
number of examples per operation, so it takes seconds and fails on any finding:
a 500, a response that its schema does not describe, bad input accepted, good
input refused, a missing auth check.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner, Result
from schemathesis.cli import schemathesis
from temporalio.testing import WorkflowEnvironment

from tests.integration.server_support import running_node

#: Test cases per operation and phase: enough to reach every status an operation
#: documents, few enough that the whole run stays within seconds.
EXAMPLES_PER_OPERATION = 25

#: What the API does on purpose that the checks, knowing only the schema, cannot tell.
CONFIG = """
# Every check, as `--checks all` would; said here rather than on the command line,
# where it would win over the per-operation lines below.
[checks]
enabled = true

[cache]
# Crash records would go to ./.schemathesis in the checkout otherwise.
directory = "{cache_dir}"

[[operations]]
# The schema can only say `source` is a string; a string that is not a valid flow
# (bad YAML, unknown step) is refused with a 422 listing the problems, by design.
include-name = "PUT /api/flows/{{name}}"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422"]

[[operations]]
# Litestar answers OPTIONS itself, and for this path (GET and PUT handlers in one
# controller) it builds the Allow header from the GET route alone: "GET, OPTIONS".
# OPTIONS is not part of the API (not in the schema); the header is Litestar's.
include-path = "/api/flows/{{name}}"
checks.allow_header_conformance.enabled = false

[[operations]]
# The same for every other path with two methods in one controller: Litestar's Allow
# names one of them (e.g. "OPTIONS, POST" for GET and POST /api/queues).
include-path = [
    "/api/auth/setup",
    "/api/canned",
    "/api/canned/{{canned_id}}",
    "/api/queues",
    "/api/queues/{{name}}",
    "/api/users",
    "/api/users/me",
    "/api/users/{{user_id}}",
]
checks.allow_header_conformance.enabled = false

[[operations]]
# Members are user ids and `hours` names a business_hours calendar of the settings: an
# id that is nobody's (or not an agent's) or a calendar that does not exist is a 422
# saying so, which no schema can tell in advance.
include-name = ["POST /api/queues", "PUT /api/queues/{{name}}"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

[[operations]]
# A canned response's text is a template: one that does not compile (`{{{{ x` or an
# unknown name) is a 422 locating the problem, as a flow's source is.
include-name = ["POST /api/canned", "PUT /api/canned/{{canned_id}}"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

[[operations]]
# Each time is a date-time in the schema, but a range has rules between its two ends
# that a schema cannot state: `from` before `to` (`since` before `until`), and a report
# covers at most 93 days. Breaking them is a 400 saying which.
include-path = ["/api/audit", "/api/reports/agents", "/api/reports/queues"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404"]
"""


def _run_schemathesis(base_url: str, token: str, work_dir: Path) -> Result:
    config = work_dir / "schemathesis.toml"
    config.write_text(CONFIG.format(cache_dir=work_dir / "cache"))
    arguments = [
        f"--config-file={config}",
        "run",
        f"{base_url}/schema/openapi.json",
        f"--max-examples={EXAMPLES_PER_OPERATION}",
        "--seed=15",
        "--workers=1",
        "--no-shrink",
        "--generation-database=none",
        "--request-timeout=10",
        f"--report-dir={work_dir / 'report'}",
        "--no-color",
        f"--header=Authorization: Bearer {token}",
    ]
    return CliRunner().invoke(schemathesis, arguments, catch_exceptions=False)


async def test_schemathesis_finds_nothing(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    work_dir = tmp_path / "schemathesis"
    work_dir.mkdir()
    stray = Path(".schemathesis")  # where the CLI keeps its data unless told otherwise
    stray_before = stray.exists()
    async with running_node(fx_dev_env, tmp_path) as node:
        # The CLI makes blocking requests: in a thread, so this loop keeps serving them.
        result = await asyncio.to_thread(_run_schemathesis, node.url, node.token, work_dir)
    assert result.exit_code == 0, result.output
    assert stray_before or not stray.exists(), "schemathesis wrote into the working directory"
