"""Run the real ``flowdesk`` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

Flowdesk = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(name="fx_flowdesk")
def fixture_flowdesk(tmp_path: Path) -> Flowdesk:
    """``fx_flowdesk("test", "flows", stdin="...")``: runs in ``tmp_path`` with a clean environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWDESK_")}
    env["PYTHONPATH"] = str(REPO)
    env.pop("NO_COLOR", None)

    def run(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "engine", *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=cwd or tmp_path,
            env=env,
            timeout=60,
            check=False,
        )

    return run
