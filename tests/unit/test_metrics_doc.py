"""docs/metrics.md lists every metric engine/metrics.py declares, with its labels."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import REGISTRY

import engine.metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def _documented() -> dict[str, set[str]]:
    rows = re.findall(r"^\| `(flowdesk_\w+)` \| \w+ \|([^|]*)\|", DOC.read_text(encoding="utf-8"), re.M)
    return {name: set(re.findall(r"`(\w+)`", labels)) for name, labels in rows}


def _declared() -> dict[str, set[str]]:
    declared: dict[str, set[str]] = {}
    for value in vars(engine.metrics).values():
        name = getattr(value, "_name", None)
        if isinstance(name, str) and name.startswith("flowdesk_"):
            declared[name] = set(getattr(value, "_labelnames", ()))
    for family in engine.metrics.CONVERSATIONS.describe():
        declared[family.name] = {"status"}
    return declared


def test_every_metric_is_documented_with_its_labels() -> None:
    documented = _documented()
    for name, labels in _declared().items():
        # prometheus_client drops the _total suffix from a counter's own name.
        key = name if name in documented else f"{name}_total"
        assert key in documented, f"{name} is not in docs/metrics.md"
        assert documented[key] == labels, f"{name}: documented labels {documented[key]}, declared {labels}"
    assert len(documented) == len(_declared())


def test_the_registry_exposes_them() -> None:
    exposed = {metric.name for metric in REGISTRY.collect()}
    for name in _declared():
        assert name in exposed or name.removesuffix("_total") in exposed, name
