"""The scan's reporters: one :class:`ScanReport` rendered as ``text`` (for people and editors),
``json`` (for scripts), ``sarif`` (SARIF 2.1.0, for code-scanning services) or ``markdown`` (a
report to read or paste into an issue: findings grouped High / Medium / Low, each with its
code, why it costs time and the slipstream fix, before and after).

    print(render(scan_report("src"), "markdown"))

The text form is coloured and grouped by file with rich when it goes to a terminal (rich is an
optional extra; without it, or when piped, it is plain ``path:line:col: CODE name message``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..core import rules as _catalogue
from ..core.version import __version__, home_page
from .config import FORMATS
from .engine import FileError, ScanReport
from .model import SEVERITIES, Finding, Rule, Severity

__all__ = ["FORMATS", "render", "to_json", "to_markdown", "to_sarif", "to_text"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL: dict[Severity, str] = {"high": "error", "medium": "warning", "low": "note"}
FINGERPRINT_KEY = "slipstream/v1"
ROOT_ID = "SRCROOT"
_TITLE: dict[Severity, str] = {"high": "High", "medium": "Medium", "low": "Low"}
_STYLE: dict[Severity, str] = {"high": "bold red", "medium": "yellow", "low": "cyan"}
_DESCENDING: tuple[Severity, ...] = tuple(reversed(SEVERITIES))


def render(report: ScanReport, fmt: str, *, color: bool | None = None) -> str:
    """``report`` in format ``fmt`` (``text``, ``json``, ``sarif`` or ``markdown``).

    Args:
        report: what :func:`scan_report` returned.
        fmt: one of :data:`FORMATS`.
        color: text only: colour and group by file with rich (True), plain (False), or colour
            when standard output is a terminal, ``NO_COLOR`` is not set and rich is installed
            (None).

    Raises:
        ValueError: ``fmt`` is not a known format.
    """
    if fmt == "text":
        return to_text(report, color=color)
    renderers: dict[str, Callable[[ScanReport], str]] = {
        "json": to_json,
        "sarif": to_sarif,
        "markdown": to_markdown,
    }
    try:
        return renderers[fmt](report)
    except KeyError:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}") from None


def _rule(finding: Finding) -> Rule:
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


def _counts(findings: Iterable[Finding]) -> Counter[Severity]:
    return Counter(f.severity for f in findings)


def summary(report: ScanReport) -> str:
    """One line: how many findings of each severity, in how many files and lines, and how
    many files could not be scanned."""
    n = len(report.findings)
    counts = _counts(report.findings)
    files = f"{report.files} file{'s' * (report.files != 1)} ({report.lines} lines)"
    if n:
        by = ", ".join(f"{counts[s]} {s}" for s in _DESCENDING)
        text = f"{n} finding{'s' * (n != 1)} ({by}) in {files}"
    else:
        text = f"No findings in {files}"
    if report.errors:
        e = len(report.errors)
        text += f"; {e} file{'s' * (e != 1)} could not be scanned"
    return text


# -- text -----------------------------------------------------------------------------------


def _use_color(color: bool | None) -> bool:
    if color is None:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    if not color:
        return False
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def to_text(report: ScanReport, *, color: bool | None = None) -> str:
    """``path:line:col: SLP201 query-in-loop message``, then an indented ``fix:`` line and
    one ``via path:line function`` line per chain step; the files that could not be scanned;
    a summary line. With colour: grouped under one heading per file."""
    if _use_color(color):
        return _rich_text(report)
    lines: list[str] = []
    for f in report.findings:
        lines.append(str(f))
        lines.append(f"    fix: {f.fix}")
        lines.extend(f"    via {step}" for step in f.chain)
    lines.extend(f"error: {e}" for e in report.errors)
    lines.append(summary(report))
    return "\n".join(lines) + "\n"


def _rich_text(report: ScanReport) -> str:
    from rich.console import Console
    from rich.text import Text

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, soft_wrap=True, highlight=False)
    current = None
    for f in report.findings:
        if f.path != current:
            if current is not None:
                console.print()
            console.print(Text(f.path, style="bold underline"))
            current = f.path
        line = Text("  ")
        line.append(f"{f.path}:{f.line}:{f.col + 1}:", style="dim")
        line.append(" ")
        line.append(f.code, style=_STYLE[f.severity])
        line.append(f" {f.name} ", style="bold")
        line.append(f.message)
        console.print(line)
        console.print(Text("      fix: ", style="green").append(f.fix, style="default"))
        for step in f.chain:
            console.print(Text(f"      via {step}", style="dim"))
    if report.errors:
        console.print()
        for e in report.errors:
            console.print(Text("error: ", style="bold red").append(str(e)))
    if report.findings or report.errors:
        console.print()
    style = "bold red" if report.findings else "bold green"
    console.print(Text(summary(report), style=style))
    return out.getvalue()


# -- json -----------------------------------------------------------------------------------


def finding_dict(f: Finding) -> dict[str, Any]:
    """The JSON object of one finding: exactly ``code``, ``name``, ``path``, ``line``,
    ``col``, ``end_line``, ``end_col``, ``message``, ``severity``, ``fix``, ``chain``."""
    return {
        "code": f.code,
        "name": f.name,
        "path": f.path,
        "line": f.line,
        "col": f.col,
        "end_line": f.end_line,
        "end_col": f.end_col,
        "message": f.message,
        "severity": f.severity,
        "fix": f.fix,
        "chain": [str(step) for step in f.chain],
    }


def to_json(report: ScanReport) -> str:
    """A JSON list with one object per finding (see :func:`finding_dict`)."""
    return json.dumps([finding_dict(f) for f in report.findings], indent=2) + "\n"


# -- sarif ----------------------------------------------------------------------------------


def _sarif_rule(r: Rule) -> dict[str, Any]:
    return {
        "id": r.code,
        "name": r.name,
        "shortDescription": {"text": r.summary},
        "fullDescription": {"text": r.why or r.summary},
        "help": {"text": f"Fix: {r.fix}", "markdown": r.doc()},
        "defaultConfiguration": {"level": SARIF_LEVEL[r.severity]},
        "properties": {"tags": ["performance", r.family] if r.family else ["performance"]},
    }


def _artifact(path: str) -> dict[str, Any]:
    return {"uri": urllib.parse.quote(path), "uriBaseId": ROOT_ID}


def _physical(path: str, region: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"artifactLocation": _artifact(path)}
    if region is not None:
        out["region"] = region
    return out


def fingerprint(f: Finding, occurrence: int = 1) -> str:
    """The SARIF partial fingerprint of ``f``: a hash of its code, path and
    :attr:`Finding.fingerprint` (the normalised code, which does not change when lines move),
    and ``occurrence`` (1 for the first finding with that hash in the file, 2 for the
    next, ...), so two identical statements in one file stay distinct."""
    basis = f.fingerprint or f"{f.message}\0{f.excerpt}"
    digest = hashlib.sha256(f"{f.code}\0{f.path}\0{basis}".encode()).hexdigest()[:32]
    return f"{digest}:{occurrence}"


def _sarif_result(f: Finding, index: int, occurrence: int) -> dict[str, Any]:
    region: dict[str, Any] = {
        "startLine": f.line,
        "startColumn": f.col + 1,
        "endLine": max(f.end_line, f.line),
        "endColumn": max(f.end_col + 1, 1),
    }
    if f.excerpt:
        region["snippet"] = {"text": f.excerpt}
    result: dict[str, Any] = {
        "ruleId": f.code,
        "level": SARIF_LEVEL[f.severity],
        "message": {"text": f"{f.message} (fix: {f.fix})"},
        "locations": [{"physicalLocation": _physical(f.path, region)}],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(f, occurrence)},
    }
    if index >= 0:
        result["ruleIndex"] = index
    if f.chain:
        steps = [
            {
                "id": i,
                "physicalLocation": _physical(step.path, {"startLine": step.line}),
                "message": {"text": f"via {step.function}"},
            }
            for i, step in enumerate(f.chain, 1)
        ]
        result["relatedLocations"] = steps
        flow = [
            {
                "location": {
                    "physicalLocation": result["locations"][0]["physicalLocation"],
                    "message": {"text": f.message},
                }
            }
        ]
        flow += [{"location": step} for step in steps]
        result["codeFlows"] = [{"threadFlows": [{"locations": flow}]}]
    return result


def _notification(e: FileError) -> dict[str, Any]:
    return {
        "level": "error",
        "message": {"text": f"{e.path}: {e.reason}"},
        "locations": [{"physicalLocation": _physical(e.path)}],
    }


def to_sarif(report: ScanReport) -> str:
    """A SARIF 2.1.0 log with one run: the rule catalogue in ``tool.driver.rules``, one result
    per finding (paths relative to ``SRCROOT``, the scanned root; 1-based columns; the chain as
    related locations and a code flow; stable ``partialFingerprints``), and the files that could
    not be scanned as ``invocations[0].toolExecutionNotifications``."""
    rules = list(_catalogue.RULES)
    known = {r.code for r in rules}
    for f in report.findings:  # codes the catalogue does not (yet) describe
        if f.code not in known:
            rules.append(_rule(f))
            known.add(f.code)
    index = {r.code: i for i, r in enumerate(rules)}
    seen: Counter[str] = Counter()
    results = []
    for f in report.findings:
        base = fingerprint(f).rpartition(":")[0]
        seen[base] += 1
        results.append(_sarif_result(f, index.get(f.code, -1), seen[base]))
    driver: dict[str, Any] = {
        "name": "slipstream",
        "version": __version__,
        "rules": [_sarif_rule(r) for r in rules],
    }
    uri = home_page()
    if uri:
        driver["informationUri"] = uri
    root_uri = Path(report.root).resolve().as_uri().rstrip("/") + "/"
    run = {
        "tool": {"driver": driver},
        "originalUriBaseIds": {ROOT_ID: {"uri": root_uri}},
        "invocations": [
            {
                "executionSuccessful": not report.errors,
                "toolExecutionNotifications": [_notification(e) for e in report.errors],
            }
        ],
        "results": results,
    }
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2) + "\n"


# -- markdown -------------------------------------------------------------------------------


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
    counts = _counts(findings)
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
    out += [f"| {_TITLE[s]} | {counts[s]} |" for s in _DESCENDING]
    out += [f"| **Total** | **{len(findings)}** |", ""]
    if by_rule:
        out += ["| Rule | Priority | Findings | Fix |", "|---|---|---|---|"]
        for r in sorted((_rule(first[c]) for c in by_rule), key=_rank):
            seen = _TITLE[first[r.code].severity]
            out.append(f"| {r.code} `{r.name}` | {seen} | {by_rule[r.code]} | {r.fix} |")
        out.append("")
    if report.errors:
        e = len(report.errors)
        out += [f"{e} file{'s' * (e != 1)} could not be scanned (see the end).", ""]
    out += ["---", ""]
    for section, severity in enumerate(_DESCENDING, 1):
        out += [f"## {section}. {_TITLE[severity]} priority", ""]
        group = [f for f in findings if f.severity == severity]
        if not group:
            out += ["No findings.", ""]
            continue
        codes = sorted({f.code for f in group}, key=lambda c: _rank(_rule(first[c])))
        for sub, code in enumerate(codes, 1):
            r = _rule(first[code])
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
                out += [f"**Fix**: {f.fix}", ""]
        out += ["---", ""]
    if report.errors:
        out += ["## Could not be scanned", ""]
        out += [f"- `{e.path}`: {e.reason}" for e in report.errors]
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _rank(r: Rule) -> tuple[int, str]:
    return (_DESCENDING.index(r.severity), r.code)
