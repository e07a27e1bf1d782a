"""The ``markdown`` report, in the shape of a hand-written performance review: a summary, then
High, Medium and Low sections with one heading per rule (why it costs time, the fix before and
after) and each finding with its location, chain and code."""

from __future__ import annotations

from collections import Counter

from ..engine import ScanReport
from ..model import Finding, Rule
from .common import DESCENDING, TITLE, rule_of, severity_counts
from .runtime import NOT_SEEN, UNMATCHED_TITLE, cost, measured_of, site

__all__ = ["to_markdown"]


def _fence(code: str) -> str:
    body = code.rstrip("\n")
    ticks = "```"
    while ticks in body:
        ticks += "`"
    return f"{ticks}python\n{body}\n{ticks}"


def _location(f: Finding) -> str:
    span = f"{f.line}" if f.end_line <= f.line else f"{f.line}-{f.end_line}"
    return f"`{f.path}:{span}`"


def to_markdown(report: ScanReport) -> str:
    """A report in the shape of a hand-written performance review: a summary (counts by
    severity and by rule), then High, Medium and Low sections; in each, one heading per rule
    with why it costs time and the fix (before / after with slipstream), then each finding
    with its location, the call chain and the code as written."""
    findings = report.findings
    counts = severity_counts(findings)
    by_rule = Counter(f.code for f in findings)
    first: dict[str, Finding] = {}
    for f in findings:
        first.setdefault(f.code, f)
    out = ["# Performance scan report", ""]
    out += [
        f"`slipstream scan` read {report.files} file{'s' * (report.files != 1)} "
        f"({report.lines} lines) under `{report.root}`.",
        "",
        "## Summary",
        "",
        "| Priority | Findings |",
        "|---|---|",
    ]
    out += [f"| {TITLE[s]} | {counts[s]} |" for s in DESCENDING]
    out += [f"| **Total** | **{len(findings)}** |", ""]
    if by_rule:
        out += ["| Rule | Priority | Findings | Fix |", "|---|---|---|---|"]
        for r in sorted((rule_of(first[c]) for c in by_rule), key=_rank):
            seen = TITLE[first[r.code].severity]
            out.append(f"| {r.code} `{r.name}` | {seen} | {by_rule[r.code]} | {r.fix} |")
        out.append("")
    if report.errors:
        e = len(report.errors)
        out += [f"{e} file{'s' * (e != 1)} could not be scanned (see the end).", ""]
    measured = measured_of(report)
    out += _runtime_sections(report)
    out += ["---", ""]
    for section, severity in enumerate(DESCENDING, 1):
        out += [f"## {section}. {TITLE[severity]} priority", ""]
        group = [f for f in findings if f.severity == severity]
        if not group:
            out += ["No findings.", ""]
            continue
        codes = sorted({f.code for f in group}, key=lambda c: _rank(rule_of(first[c])))
        for sub, code in enumerate(codes, 1):
            r = rule_of(first[code])
            mine = [f for f in group if f.code == code]
            out += [f"### {section}.{sub} {r.code} {r.name} ({len(mine)})", ""]
            out += [r.summary, ""]
            if r.why:
                out += [f"**Why it costs time**: {r.why}", ""]
            out += [f"**Fix**: {r.fix}", ""]
            if r.example and r.fixed:
                out += ["Before:", "", _fence(r.example), "", "With slipstream:", ""]
                out += [_fence(r.fixed), ""]
            for n, f in enumerate(mine, 1):
                out += [f"#### {section}.{sub}.{n} {_location(f)}", ""]
                out += [f"**Location**: {_location(f)}, column {f.col + 1}", ""]
                out += [f"**Issue**: {f.message}", ""]
                if f.chain:
                    out += ["**Through**:", ""]
                    out += [f"- `{step.path}:{step.line}` `{step.function}`" for step in f.chain]
                    out.append("")
                if f.excerpt:
                    out += [_fence(f.excerpt), ""]
                if measured is not None:
                    m = measured.get(f)
                    ran = f"**Ran**: {cost(f.code, m.count, m.total_s)}" if m else f"*{NOT_SEEN}*"
                    out += [ran, ""]
                out += [f"**Fix**: {f.fix}", ""]
        out += ["---", ""]
    if report.errors:
        out += ["## Could not be scanned", ""]
        out += [f"- `{e.path}`: {e.reason}" for e in report.errors]
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _runtime_sections(report: ScanReport) -> list[str]:
    """With --runtime: the findings that ran, largest measured cost first, and the run-time
    findings no static finding accounts for."""
    if report.runtime is None:
        return []
    sources = ", ".join(f"`{s}`" for s in report.runtime.sources) or "the runtime file"
    out = ["## Ranked by what ran", "", f"Measured at run time ({sources}).", ""]
    if report.runtime.ran:
        out += ["| # | Finding | Location | Ran |", "|---|---|---|---|"]
        shown = [(f, m) for f, m in report.runtime.ran if f in report.findings]
        for n, (f, m) in enumerate(shown, 1):
            if True:
                what = f"{f.code} `{f.name}`"
                out.append(
                    f"| {n} | {what} | {_location(f)} | {cost(f.code, m.count, m.total_s)} |"
                )
        out.append("")
    else:
        out += ["No static finding ran.", ""]
    if report.runtime.unmatched:
        out += [f"## {UNMATCHED_TITLE[0].upper()}{UNMATCHED_TITLE[1:]}", ""]
        out += ["| Rule | Location | Function | Ran | Statement |", "|---|---|---|---|---|"]
        for r in report.runtime.unmatched:
            statement = r.fingerprint.replace("|", "\\|").replace("`", "'")
            out.append(
                f"| {r.code} | `{site(report, r)}:{r.line}` | `{r.function}` | "
                f"{cost(r.code, r.count, r.total_s)} | `{statement}` |"
            )
        out.append("")
    return out


def _rank(r: Rule) -> tuple[int, str]:
    return (DESCENDING.index(r.severity), r.code)
