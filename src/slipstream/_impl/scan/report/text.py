"""The ``text`` report: ``path:line:col: CODE name message`` lines with the fix and the chain,
for people and editors; coloured and grouped by file with rich when it goes to a terminal
(rich is an optional extra)."""

from __future__ import annotations

import io
import os
import sys

from ..engine import ScanReport
from ..model import Severity
from .common import summary
from .runtime import UNMATCHED_TITLE, measured_of, ran_text, unmatched_text

__all__ = ["to_text"]

_STYLE: dict[Severity, str] = {"high": "bold red", "medium": "yellow", "low": "cyan"}


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
    measured = measured_of(report)
    for f in report.findings:
        lines.append(str(f))
        lines.append(f"    fix: {f.fix}")
        lines.extend(f"    via {step}" for step in f.chain)
        if measured is not None:
            lines.append(f"    {ran_text(f, measured.get(f))}")
    if report.runtime is not None and report.runtime.unmatched:
        lines.append(f"{UNMATCHED_TITLE}:")
        lines.extend(f"    {unmatched_text(report, r)}" for r in report.runtime.unmatched)
    lines.extend(f"error: {e}" for e in report.errors)
    lines.append(summary(report))
    return "\n".join(lines) + "\n"


def _rich_text(report: ScanReport) -> str:
    from rich.console import Console
    from rich.text import Text

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, soft_wrap=True, highlight=False)
    current = None
    measured = measured_of(report)
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
        if measured is not None:
            ran = measured.get(f)
            console.print(Text(f"      {ran_text(f, ran)}", style="bold" if ran else "dim"))
    if report.runtime is not None and report.runtime.unmatched:
        console.print()
        console.print(Text(UNMATCHED_TITLE, style="bold underline"))
        for r in report.runtime.unmatched:
            console.print(Text(f"  {unmatched_text(report, r)}"))
    if report.errors:
        console.print()
        for e in report.errors:
            console.print(Text("error: ", style="bold red").append(str(e)))
    if report.findings or report.errors:
        console.print()
    style = "bold red" if report.findings else "bold green"
    console.print(Text(summary(report), style=style))
    return out.getvalue()
