"""A wheel built from the repository works outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_wheel_carries_the_schemas_and_validates_outside_the_checkout(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(REPO)],
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("flowdesk-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "engine/_bundled/schemas/flow.schema.json" in names
    assert "engine/_bundled/schemas/settings.schema.json" in names
    # what `flowdesk serve` needs outside the checkout: the widget, the demo page, the migrations
    assert "engine/_bundled/ui/widget/widget.js" in names and "engine/_bundled/ui/demo/index.html" in names
    assert "engine/store/migrations/versions/0001_initial.py" in names
    assert "engine/store/migrations/script.py.mako" in names
    assert not any(name.startswith(("tests/", "flows/")) for name in names)

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "good.yaml").write_text("flow: good\nsteps:\n  hi: { say: hello }\n", encoding="utf-8")
    (work / "bad.yaml").write_text(
        textwrap.dedent("""\
            flow: bad
            steps:
              hi: { say: hello, nxet: bye }
              bye: { end: resolved }
        """),
        encoding="utf-8",
    )
    # Only the installed copy is importable: no checkout on the path, another cwd.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["PYTHONPATH"] = str(site)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import engine, sys; print(engine.__file__, file=sys.stderr); "
            "from engine.cli import main; main(['validate', 'good.yaml', 'bad.yaml'])",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert str(site) in result.stderr.splitlines()[0]  # the wheel's copy ran, not the checkout
    assert result.returncode == 1
    assert "bad.yaml:3:21: FD111 error: unknown key 'nxet' in step 'hi'" in result.stdout
    assert "did you mean 'next'?" in result.stdout
