"""What every report format shares: the catalogue's rule for a finding, counts by severity
and the one-line summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ...core import rules as _catalogue
from ..engine import ScanReport
from ..model import SEVERITIES, Finding, Rule, Severity

__all__ = ["DESCENDING", "TITLE", "rule_of", "severity_counts", "summary"]

TITLE: dict[Severity, str] = {"high": "High", "medium": "Medium", "low": "Low"}
DESCENDING: tuple[Severity, ...] = tuple(reversed(SEVERITIES))


def rule_of(finding: Finding) -> Rule:
    """The catalogue's rule for ``finding``, or one built from the finding itself when the
    catalogue does not know the code (a report read back from an older version)."""
    try:
        return _catalogue.rule(finding.code)
    except KeyError:
        return Rule(
            code=finding.code,
            name=finding.name,
            severity=finding.severity,
            summary=finding.message,
            fix=finding.fix,
            why="",
            example="",
            fixed="",
        )


def severity_counts(findings: Iterable[Finding]) -> Counter[Severity]:
    return Counter(f.severity for f in findings)


def summary(report: ScanReport) -> str:
    """One line: how many findings of each severity, in how many files and lines, and how
    many files could not be scanned."""
    n = len(report.findings)
    counts = severity_counts(report.findings)
    files = f"{report.files} file{'s' * (report.files != 1)} ({report.lines} lines)"
    if n:
        by = ", ".join(f"{counts[s]} {s}" for s in DESCENDING)
        text = f"{n} finding{'s' * (n != 1)} ({by}) in {files}"
    else:
        text = f"No findings in {files}"
    if report.errors:
        e = len(report.errors)
        text += f"; {e} file{'s' * (e != 1)} could not be scanned"
    if report.runtime is not None:
        ran = sum(1 for f in report.findings if f in report.runtime.by_finding())
        text += f"; {ran} of {n} ran"
        if report.runtime.unmatched:
            u = len(report.runtime.unmatched)
            text += f", {u} more seen only at run time"
    return text
