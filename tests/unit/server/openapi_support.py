"""The app's OpenAPI document and the API client generator, for the contract and client tests.

The generator (ui/shared/generate_api_client.py) is a script, not a module of the
project: it is loaded from its file, once, and builds the document the way it
does when run (the app described in-process, no server).
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from litestar import Litestar

REPO = Path(__file__).resolve().parents[3]
GENERATOR = REPO / "ui" / "shared" / "generate_api_client.py"


@cache
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_api_client", GENERATOR)
    assert spec is not None and spec.loader is not None, GENERATOR
    module = importlib.util.module_from_spec(spec)
    # No __pycache__ beside it: ui/ holds what the UI serves and ships.
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return module


@cache
def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = generator().openapi_document()
    return document


def app_without_services() -> Litestar:
    """The app as the generator builds it: described and serving static files, with no services behind it."""
    app: Litestar = generator().app_without_services()
    return app
