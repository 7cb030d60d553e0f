"""Locate files that ship with Flowdesk (schemas, UI assets) in a wheel or a checkout.

A built wheel carries ``schemas/`` and ``ui/`` inside the ``engine`` package as
``engine/_bundled/...`` (hatch ``force-include``); an editable install or a source
checkout finds them at the repository root instead.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

_REPO_ROOT = Path(__file__).resolve().parent.parent


def bundled_dir(name: str) -> Path:
    """Directory of a shipped resource tree (``schemas`` or ``ui``)."""
    packaged = resources.files("engine") / "_bundled" / name
    if packaged.is_dir():
        return Path(str(packaged))
    return _REPO_ROOT / name


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema from ``schemas/`` by file name, parsed once per process."""
    data: dict[str, Any] = json.loads((bundled_dir("schemas") / name).read_text(encoding="utf-8"))
    return data
