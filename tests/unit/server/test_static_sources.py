"""Only the UI's built files are served under /ui: its sources answer 404, the embedded URLs keep working."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import TestClient

import engine.server.app
from tests.unit.server.openapi_support import app_without_services

#: What customers' pages and the API reference load today: these URLs must not move.
SERVED = [
    "/ui/widget/widget.js",
    "/ui/widget/widget.css",
    "/ui/demo/index.html",
    "/ui/apidocs/redoc.standalone.js",
    "/ui/apidocs/redoc.standalone.js.LICENSE.txt",
    "/ui/apidocs/LICENSE",
]


def test_the_shipped_files_are_served_and_the_api_client_sources_are_not() -> None:
    with TestClient(app_without_services()) as client:
        for path in SERVED:
            assert client.get(path).status_code == 200, path
        for path in ("/ui/shared/api.ts", "/ui/shared/generate_api_client.py"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"].startswith("application/problem+json")


def test_an_apps_sources_and_packages_are_404_beside_its_built_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ui = tmp_path / "ui"
    files = {
        "console/index.html": "<!doctype html>",
        "console/assets/app.js": "console.log(1)",
        "console/src/x.ts": "export const x = 1;",
        "console/src/logo.svg": "<svg/>",
        "console/App.tsx": "export {}",
        "console/package.json": "{}",
        "console/package-lock.json": "{}",
        "console/tsconfig.app.json": "{}",
        "console/node_modules/lib/index.js": "",
        "shared/api.ts": "export {}",
        "shared/__pycache__/generate_api_client.cpython-311.pyc": "",
    }
    for name, text in files.items():
        (ui / name).parent.mkdir(parents=True, exist_ok=True)
        (ui / name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(engine.server.app, "bundled_dir", lambda name: ui)
    with TestClient(app_without_services()) as client:
        for name in files:
            built = name in ("console/index.html", "console/assets/app.js")
            assert client.get(f"/ui/{name}").status_code == (200 if built else 404), name
        assert client.get("/ui/console/SRC/x.ts").status_code == 404  # whatever the case
