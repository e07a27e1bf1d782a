"""Shared helpers for the benchmark scripts: --quick, medians, RSS, the closing JSON line."""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

PG_URL = os.environ.get("SLIPSTREAM_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def pg_up() -> bool:
    """True when PostgreSQL answers on 127.0.0.1:5432 (benchmarks then include it)."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="the short run (< 60 s on 2 cores)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per measurement")
    return parser.parse_args()


def median_of(repeats: int, measure: Callable[[], float]) -> float:
    """Median of ``repeats`` runs of ``measure`` (machines are noisy; medians are not)."""
    return statistics.median(measure() for _ in range(repeats))


def rss_mb() -> float:
    """Resident set size of this process now, in MB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except OSError:
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def max_in_window(starts: list[float], window_s: float) -> int:
    """The most start times found in any closed window of ``window_s`` seconds."""
    starts = sorted(starts)
    best = j = 0
    for i, t in enumerate(starts):
        while j < len(starts) and starts[j] <= t + window_s:
            j += 1
        best = max(best, j - i)
    return best


def report(figures: dict[str, Any]) -> None:
    """Print a readable table, then the figures as the last line: one JSON object (nested
    groups, such as ``{"scale": {...}}``, are shown as ``scale.key`` in the table)."""
    flat: dict[str, Any] = {}
    for key, value in figures.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    width = max(len(k) for k in flat)
    for key, value in flat.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"  {key:<{width}}  {shown}")
    print(json.dumps(_rounded(figures)))


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value
