"""Helpers shared by the benchmark scripts: percentiles, latency summaries, the JSON line.

DESIGN.md section 6: every bench script takes ``--json`` and then prints one JSON
object as its last line, ``{"bench", "params", "engine", "baseline", "ratio"}``,
latencies as ``p50_ms``/``p99_ms``, rates as ``per_s``, each ratio engine/baseline
for the same key.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def latency_summary(values_ms: Sequence[float]) -> dict[str, float]:
    """``p50_ms``, ``p90_ms``, ``p99_ms``, ``max_ms`` of latencies in milliseconds, rounded to 0.01."""
    return {
        "p50_ms": round(percentile(values_ms, 50), 2),
        "p90_ms": round(percentile(values_ms, 90), 2),
        "p99_ms": round(percentile(values_ms, 99), 2),
        "max_ms": round(max(values_ms), 2) if values_ms else math.nan,
    }


def ratios(engine: Mapping[str, Any], baseline: Mapping[str, Any], keys: Iterable[str]) -> dict[str, float]:
    """engine/baseline for each key present (and non-zero) on both sides."""
    out: dict[str, float] = {}
    for key in keys:
        e, b = engine.get(key), baseline.get(key)
        if isinstance(e, (int, float)) and isinstance(b, (int, float)) and b:
            out[key] = round(e / b, 3)
    return out


def machine() -> dict[str, Any]:
    """What the figures depend on: CPUs and Python."""
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.machine()}


def json_line(bench: str, params: Mapping[str, Any], engine: Any, baseline: Any, ratio: Any) -> str:
    """The one-line JSON result of DESIGN.md section 6."""
    return json.dumps(
        {"bench": bench, "params": dict(params), "engine": engine, "baseline": baseline, "ratio": ratio},
        ensure_ascii=False,
    )
