"""Session-wide hooks: end a session that used Temporal without the SDK's exit-time abort.

The temporalio SDK's native threads can abort the interpreter during normal
shutdown (``Fatal Python error: PyGILState_Release``, temporalio/sdk-python#300),
turning a green run into a random failure. Once pytest has reported everything,
a session that imported ``temporalio`` leaves through ``os._exit`` with pytest's own
exit status; runs that never touched Temporal exit normally.

Workers in tests run workflow code in Temporal's sandbox (production runs it
without, for speed; see engine.runtime.worker.workflow_runner), so that a
non-deterministic call in workflow code fails a test.
"""

from __future__ import annotations

import os
import sys

import pytest

from tests.postgres_support import fixture_postgres, fixture_postgres_url

__all__ = ["fixture_postgres", "fixture_postgres_url"]  # fixtures for every test

_session: pytest.Session | None = None

os.environ.setdefault("FLOWDESK_WORKFLOW_SANDBOX", "on")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Remember the session: its ``exitstatus`` is read at the very end, once no plugin can change it."""
    global _session  # noqa: PLW0603 - hook state lives at module level in a conftest
    _session = session


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """After the summary is written: flush and leave with the session's status if Temporal was used."""
    if _session is None or "temporalio" not in sys.modules:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(_session.exitstatus))
