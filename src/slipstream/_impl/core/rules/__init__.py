"""The rule catalogue: one table of every rule's code, name, severity, fix and documentation,
shared by the scanner, its reporters, ``slipstream rule`` and the runtime detectors.

``docs/scan.md`` holds each rule's documentation as :func:`rules_markdown` renders it (a test
keeps the two equal); after editing a rule here, regenerate it with
``make docs``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .rule import SEVERITIES, Rule, Severity
from .table import RULES

__all__ = [
    "DOCS_BEGIN",
    "DOCS_END",
    "RULES",
    "SEVERITIES",
    "Rule",
    "Severity",
    "rule",
    "rules_markdown",
    "update_docs",
    "write_docs",
]

DOCS_BEGIN = (
    "<!-- rules:begin (generated from slipstream._impl.core.rules by rules_markdown(); "
    "do not edit by hand) -->"
)
DOCS_END = "<!-- rules:end -->"

# What each [tool.slipstream.scan.knowledge] list adds to the scanner's API table.
_BY_KEY = {r.code: r for r in RULES} | {r.name: r for r in RULES}


def rule(key: str) -> Rule:
    """The rule with code ``key`` (``"SLP201"``) or name (``"query-in-loop"``)."""
    try:
        return _BY_KEY[key.upper() if key[:3].lower() == "slp" else key]
    except KeyError:
        raise KeyError(f"no rule {key!r}; known: {', '.join(r.code for r in RULES)}") from None


def _nest(markdown: str, levels: int) -> str:
    """``markdown`` with every heading (outside code fences) ``levels`` deeper."""
    out: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            line = "#" * levels + line
        out.append(line)
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def rules_markdown() -> str:
    """The rules part of ``docs/scan.md``: a table of every rule, then each rule's
    :meth:`Rule.doc` with its headings nested under ``## Rules``."""
    parts = [
        "| Code | Name | Severity | What it finds | Fix |",
        "|---|---|---|---|---|",
    ]
    parts += [
        f"| [{r.code}](#{r.code.lower()}-{r.name}) | {r.name} | {r.severity} "
        f"| {_cell(r.summary)} | {_cell(r.fix)} |"
        for r in RULES
    ]
    text = "\n".join(parts) + "\n"
    for r in RULES:
        text += "\n" + _nest(r.doc(), 2)
    return text


def update_docs(text: str) -> str:
    """``text`` (the contents of ``docs/scan.md``) with the generated rules part replaced.

    Raises:
        ValueError: the begin or end marker is missing.
    """
    begin, end = text.find(DOCS_BEGIN), text.find(DOCS_END)
    if begin < 0 or end < begin:
        raise ValueError(f"the markers {DOCS_BEGIN!r} and {DOCS_END!r} must both be present")
    head = text[: begin + len(DOCS_BEGIN)]
    return f"{head}\n\n{rules_markdown()}\n{text[end:]}"


def write_docs(path: str | os.PathLike[str]) -> bool:
    """Regenerate the rules part of the Markdown file at ``path``; True if it changed."""
    target = Path(path)
    current = target.read_text(encoding="utf-8")
    updated = update_docs(current)
    if updated != current:
        target.write_text(updated, encoding="utf-8")
    return updated != current
