"""Join a scan with what ran: the run-time findings the watchers recorded (``core.runtime``),
matched to the static findings by call site, so the report ranks the static findings by
measured cost and shows which ones ran.

A run-time finding matches a static finding when both hold:

- **the same place**: its file (absolute as recorded; a relative one is taken from the scan
  root) is the finding's file or a file of its chain, compared after resolving both (symbolic
  links followed), and its line is one of the finding's lines (``line`` to ``end_line``) or
  the line of a chain step. The watchers record the innermost frame of the user's code, which
  for an N+1 through a helper is the helper's query line: the last step of the chain.
- **a compatible code** (:data:`COMPATIBLE`): the same code, or SLP201 (query-in-loop) and
  SLP202 (write-in-loop) either way, because the watchers tell a query from a write by the
  statement's text and the scanner by the API called; either also matches SLP301
  (await-in-loop), the scanner's name for an awaited call per item when it does not know the
  call as a query. SLP203 (commit-in-loop) matches only itself.

A run-time finding may match several static findings (two loops calling one helper): each of
them gets its whole cost, since the watchers cannot tell the callers apart.

    report = join(scan_report("src"), load("runtime.json"), sources=("runtime.json",))
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final

from ..core.runtime import RuntimeFinding, merge
from .engine import ScanReport
from .model import Finding, Measured, RuntimeJoin

__all__ = ["COMPATIBLE", "compatible", "join"]

_PER_ITEM: Final = frozenset({"SLP201", "SLP202", "SLP301"})
COMPATIBLE: Final[Mapping[str, frozenset[str]]] = {
    "SLP201": _PER_ITEM,
    "SLP202": _PER_ITEM,
    "SLP203": frozenset({"SLP203"}),
}


def compatible(runtime_code: str) -> frozenset[str]:
    """The static codes a run-time finding with ``runtime_code`` may match."""
    return COMPATIBLE.get(runtime_code, frozenset({runtime_code}))


def join(
    report: ScanReport,
    runtime: Iterable[RuntimeFinding],
    *,
    sources: Sequence[str] = (),
) -> ScanReport:
    """``report`` joined with the run-time findings ``runtime``.

    Args:
        report: a scan (what ``scan_report`` returned).
        runtime: run-time findings (``core.runtime.load``); records of the same finding from
            several files are added together first.
        sources: the runtime files they came from (shown in the report).

    Returns:
        A copy of ``report`` whose findings that ran come first, by measured ``total_s`` then
        ``count`` (largest first), the others after in their scan order, and whose
        ``runtime`` holds what was measured and the run-time findings no static finding
        accounts for.
    """
    root = Path(report.root)
    real: dict[str, str] = {}

    def resolved(path: str) -> str:
        where = real.get(path)
        if where is None:
            where = real[path] = os.path.realpath(root / path)
        return where

    sites: dict[tuple[str, int], list[int]] = {}
    for i, f in enumerate(report.findings):
        file = resolved(f.path)
        for line in range(f.line, max(f.end_line, f.line) + 1):
            sites.setdefault((file, line), []).append(i)
        for step in f.chain:
            sites.setdefault((resolved(step.path), step.line), []).append(i)

    matched: dict[int, list[RuntimeFinding]] = {}
    unmatched: list[RuntimeFinding] = []
    for r in merge(runtime):
        codes = compatible(r.code)
        hits = [
            i
            for i in dict.fromkeys(sites.get((resolved(r.path), r.line), ()))
            if report.findings[i].code in codes
        ]
        if not hits:
            unmatched.append(r)
        for i in hits:
            matched.setdefault(i, []).append(r)

    measured = {
        i: Measured(
            count=sum(r.count for r in seen),
            total_s=sum(r.total_s for r in seen),
            seen=tuple(seen),
        )
        for i, seen in matched.items()
    }
    ranked = sorted(measured, key=lambda i: (-measured[i].total_s, -measured[i].count, i))
    rest = [i for i in range(len(report.findings)) if i not in measured]
    findings: tuple[Finding, ...] = tuple(report.findings[i] for i in [*ranked, *rest])
    unmatched.sort(key=lambda r: (-r.total_s, -r.count, r.path, r.line, r.code))
    joined = RuntimeJoin(
        sources=tuple(sources),
        ran=tuple((report.findings[i], measured[i]) for i in ranked),
        unmatched=tuple(unmatched),
    )
    return dataclasses.replace(report, findings=findings, runtime=joined)
