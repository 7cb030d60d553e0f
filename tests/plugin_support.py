"""Plugins written inside a test: a module made on the fly, importable as ``name:attr`` for the test."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest


def install_module(monkeypatch: pytest.MonkeyPatch, name: str, *objects: Any) -> None:
    """Make ``name`` an importable module holding ``objects`` (by ``__name__``) until the test ends."""
    module = types.ModuleType(name)
    for item in objects:
        setattr(module, item.__name__, item)
    monkeypatch.setitem(sys.modules, name, module)
