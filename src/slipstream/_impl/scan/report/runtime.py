"""What the report formats show of a scan joined with run-time findings (``--runtime``): the
"ran: 37 times, 1.2 s in the database" line of a finding that ran, "not seen at run time" for
one that did not, and the run-time findings no static finding accounts for."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...core import rules as _catalogue
from ..engine import ScanReport
from ..model import Finding, Measured, RuntimeFinding

__all__ = [
    "NOT_SEEN",
    "UNMATCHED_TITLE",
    "cost",
    "measured_of",
    "ran_text",
    "runtime_dict",
    "seconds",
    "site",
    "unmatched_dict",
    "unmatched_text",
]

NOT_SEEN = "not seen at run time"
UNMATCHED_TITLE = "seen at run time, not found statically"
_DATABASE = frozenset({"queries"})


def measured_of(report: ScanReport) -> dict[Finding, Measured] | None:
    """What ran at each finding (absent: it did not run), or None without ``--runtime``."""
    return None if report.runtime is None else report.runtime.by_finding()


def seconds(total_s: float) -> str:
    """``1.2 s``, ``340 ms``, ``0.25 ms``."""
    if total_s >= 1:
        return f"{total_s:.1f} s"
    if total_s >= 0.01:
        return f"{total_s * 1000:.0f} ms"
    return f"{total_s * 1000:.2g} ms"


def cost(code: str, count: int, total_s: float) -> str:
    """``37 times, 1.2 s in the database`` (``in those calls`` outside the query rules)."""
    try:
        family = _catalogue.rule(code).family
    except KeyError:
        family = ""
    where = "in the database" if family in _DATABASE else "in those calls"
    return f"{count} time{'s' * (count != 1)}, {seconds(total_s)} {where}"


def ran_text(f: Finding, m: Measured | None) -> str:
    """``ran: 37 times, 1.2 s in the database``, or ``not seen at run time``."""
    return NOT_SEEN if m is None else f"ran: {cost(f.code, m.count, m.total_s)}"


def site(report: ScanReport, r: RuntimeFinding) -> str:
    """A run-time finding's file, relative to the scan root when it lies under it."""
    root = os.path.realpath(report.root)
    full = os.path.realpath(Path(report.root) / r.path)
    try:
        rel = os.path.relpath(full, root)
    except ValueError:  # another drive (Windows)
        return r.path
    return full if rel.startswith("..") else Path(rel).as_posix()


def unmatched_text(report: ScanReport, r: RuntimeFinding) -> str:
    """``app/x.py:12: SLP201 in load_user: 37 times, 1.2 s in the database``."""
    return f"{site(report, r)}:{r.line}: {r.code} in {r.function}: " + cost(
        r.code, r.count, r.total_s
    )


def runtime_dict(m: Measured | None) -> dict[str, Any]:
    """The JSON object of what ran at a finding: ``ran``, ``count``, ``total_s``."""
    if m is None:
        return {"ran": False, "count": 0, "total_s": 0.0}
    return {"ran": True, "count": m.count, "total_s": m.total_s}


def unmatched_dict(report: ScanReport, r: RuntimeFinding) -> dict[str, Any]:
    """A run-time finding with no static match, in the shape of a finding's JSON object (the
    catalogue's name, severity and fix; no column, no chain) plus ``runtime``."""
    try:
        rule = _catalogue.rule(r.code)
        name, severity, fix = rule.name, rule.severity, rule.fix
    except KeyError:
        name, severity, fix = r.code, "medium", ""
    return {
        "code": r.code,
        "name": name,
        "path": site(report, r),
        "line": r.line,
        "col": 0,
        "end_line": r.line,
        "end_col": 0,
        "message": f"{UNMATCHED_TITLE} (in {r.function})",
        "severity": severity,
        "fix": fix,
        "chain": [],
        "runtime": {
            "ran": True,
            "static": False,
            "count": r.count,
            "total_s": r.total_s,
            "function": r.function,
            "fingerprint": r.fingerprint,
        },
    }
