"""A wheel built from the repository works outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

from engine.server.static_paths import is_ui_source

REPO = Path(__file__).resolve().parents[2]
BUNDLED_UI = "engine/_bundled/ui/"
#: What the server serves under /ui today (customers embed the widget): shipped, at these paths.
SERVED_UI = {
    "widget/widget.js",
    "widget/widget.css",
    "demo/index.html",
    "apidocs/redoc.standalone.js",
    "apidocs/redoc.standalone.js.LICENSE.txt",
    "apidocs/LICENSE",
}


def _build_wheel(source: Path, dist: Path) -> list[str]:
    """The file names in the wheel built from ``source``."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(source)],
        check=True,
        capture_output=True,
    )
    return zipfile.ZipFile(next(dist.glob("flowdesk-*.whl"))).namelist()


def _bundled_ui(names: list[str]) -> set[str]:
    return {name.removeprefix(BUNDLED_UI) for name in names if name.startswith(BUNDLED_UI)}


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
    # Built UI files only: the API client and its generator stay in the checkout.
    assert _bundled_ui(names) >= SERVED_UI
    assert not {"shared/api.ts", "shared/generate_api_client.py"} & _bundled_ui(names)

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


def test_the_wheel_ships_a_ui_apps_built_files_and_none_of_its_sources(tmp_path: Path) -> None:
    # The repository's packaged parts, and a TypeScript app beside the shipped UI.
    source = tmp_path / "source"
    for part in ("engine", "connectors", "schemas", "ui"):
        shutil.copytree(REPO / part, source / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / part, source / part)
    app_files = {
        "console/index.html": "<!doctype html>",
        "console/assets/app.js": "console.log(1)",
        "console/src/main.ts": "export {}",
        "console/src/logo.svg": "<svg/>",
        "console/App.tsx": "export {}",
        "console/package.json": "{}",
        "console/package-lock.json": "{}",
        "console/tsconfig.json": "{}",
        "console/tsconfig.node.json": "{}",
        "console/node_modules/lib/index.js": "",
        "shared/__pycache__/generate_api_client.cpython-311.pyc": "",
    }
    for name, text in app_files.items():
        (source / "ui" / name).parent.mkdir(parents=True, exist_ok=True)
        (source / "ui" / name).write_text(text, encoding="utf-8")

    built = {"console/index.html", "console/assets/app.js"}
    shipped = _bundled_ui(_build_wheel(source, tmp_path / "dist"))
    assert SERVED_UI | built <= shipped
    assert sorted(set(app_files) - built & shipped) == []
    # What the server refuses to serve is what the wheel leaves out.
    assert sorted(name for name in shipped if is_ui_source(name)) == []
