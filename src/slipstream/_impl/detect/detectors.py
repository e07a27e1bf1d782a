"""The detectors: what a scope's tally of statements says, with the scanner's rule codes.

SLP201 query-in-loop: the same ``SELECT`` fingerprint from the same call site at least
``min_repeats`` times in one scope. SLP202 write-in-loop: the same for ``INSERT``, ``UPDATE``
and ``DELETE``. SLP203 commit-in-loop: a commit from the same call site that many times. A
finding also needs ``min_total_s`` seconds in those statements, like Sentry's N+1 gates, so a
cheap repeat in production is not reported; a driver hook that gives no durations (sqlite3)
passes the time gate on its count alone. Each finding carries the fix from the rule catalogue,
the text the scanner prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import final

from ..core.rules import rule
from ..core.runtime import RuntimeFinding, dump
from .fingerprint import Kind

__all__ = [
    "CODES",
    "Entry",
    "QueryFinding",
    "SlowQuery",
    "Tally",
    "WatchReport",
    "detect",
    "to_runtime",
]

CODES: dict[Kind, str] = {
    "select": "SLP201",
    "insert": "SLP202",
    "update": "SLP202",
    "delete": "SLP202",
    "commit": "SLP203",
}


class Entry:
    """One (fingerprint, call site)'s running totals in one scope."""

    __slots__ = ("count", "kind", "timed", "total_s")

    def __init__(self, kind: Kind) -> None:
        self.count = 0
        self.timed = 0
        self.total_s = 0.0
        self.kind = kind


# (fingerprint, path, line, function) -> its totals
Tally = dict[tuple[str, str, int, str], Entry]


@final
@dataclass(frozen=True, kw_only=True)
class QueryFinding:
    """One repeated statement at one call site in one scope: an N+1 or a per-item write.

    Attributes:
        code: the rule code, the scanner's (``"SLP201"`` query in a loop, ``"SLP202"`` write
            in a loop, ``"SLP203"`` commit in a loop).
        name: the rule's name (``"query-in-loop"``).
        fix: what to do instead, the rule catalogue's fix line.
        path: the call site's file (the innermost frame of your code).
        line: the call site's line.
        function: the function holding the call site.
        count: how many times the statement ran there.
        total_s: seconds in those statements (0.0 when the driver gives no durations).
        fingerprint: the normalised statement.
    """

    code: str
    name: str
    fix: str
    path: str
    line: int
    function: str
    count: int
    total_s: float
    fingerprint: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.code} {self.name}: {self.count} x "
            f"{self.fingerprint!r} in {self.function} ({self.total_s * 1000:.1f} ms). "
            f"Fix: {self.fix}"
        )


def to_runtime(finding: QueryFinding) -> RuntimeFinding:
    """``finding`` as a record of the runtime findings file (``scan --runtime``)."""
    return RuntimeFinding(
        code=finding.code,
        path=finding.path,
        line=finding.line,
        function=finding.function,
        count=finding.count,
        total_s=finding.total_s,
        fingerprint=finding.fingerprint,
    )


@final
@dataclass(frozen=True, kw_only=True)
class SlowQuery:
    """One statement that took at least the scope's ``slow_s``.

    Attributes:
        fingerprint: the normalised statement.
        duration_s: how long it took.
        path: the call site's file.
        line: the call site's line.
    """

    fingerprint: str
    duration_s: float
    path: str
    line: int


@final
@dataclass(frozen=True, kw_only=True)
class WatchReport:
    """What one ``ss.watch()`` scope saw.

    Attributes:
        queries: statements recorded (commits included).
        db_s: seconds in the database, summed over the statements with a duration.
        by_fingerprint: how many times each fingerprint ran.
        findings: the N+1 and per-item write patterns that passed the gates.
        slow: the statements that took at least ``slow_s``.
        untimed: statements whose driver hook gave no duration (sqlite3, commit events).
    """

    queries: int
    db_s: float
    by_fingerprint: dict[str, int] = field(default_factory=dict)
    findings: tuple[QueryFinding, ...] = ()
    slow: tuple[SlowQuery, ...] = ()
    untimed: int = 0

    def write(self, path: str) -> None:
        """Merge this report's findings into the runtime findings file at ``path`` (the file
        ``slipstream scan --runtime`` reads; counts add up across runs and processes)."""
        dump([to_runtime(f) for f in self.findings], path)


def detect(
    tally: Tally,
    slow: list[SlowQuery],
    *,
    min_repeats: int,
    min_total_s: float,
) -> WatchReport:
    """The report for one scope's ``tally``: totals, then each call site that passed the gates."""
    queries = untimed = 0
    db_s = 0.0
    by_fp: dict[str, int] = {}
    findings: list[QueryFinding] = []
    for (fp, path, line, function), entry in tally.items():
        count, total_s, timed = entry.count, entry.total_s, entry.timed
        queries += count
        untimed += count - timed
        db_s += total_s
        by_fp[fp] = by_fp.get(fp, 0) + count
        code = CODES.get(entry.kind)
        if code is None or count < min_repeats:
            continue
        if timed and total_s < min_total_s:
            continue
        catalogued = rule(code)
        findings.append(
            QueryFinding(
                code=code,
                name=catalogued.name,
                fix=catalogued.fix,
                path=path,
                line=line,
                function=function,
                count=count,
                total_s=total_s,
                fingerprint=fp,
            )
        )
    findings.sort(key=lambda f: (-f.total_s, -f.count, f.path, f.line))
    return WatchReport(
        queries=queries,
        db_s=db_s,
        by_fingerprint=by_fp,
        findings=tuple(findings),
        slow=tuple(slow),
        untimed=untimed,
    )
