"""The rule catalogue: one table of every rule's code, name, severity, fix and documentation,
shared by the scanner, its reporters, ``slipstream rule`` and the runtime detectors.

``docs/scan.md`` holds each rule's documentation as :func:`rules_markdown` renders it, and
``docs/detect.md`` the run-time rules' (SLP201-SLP203) with what the run-time detector counts
for each (:data:`RUNTIME`); tests keep the pages equal to the catalogue. After editing a rule
here, regenerate both with ``make docs``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .rule import SEVERITIES, Rule, Severity
from .table import RULES

__all__ = [
    "DOCS_BEGIN",
    "DOCS_END",
    "PAGES",
    "RULES",
    "RUNTIME",
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
# The pages that carry generated rule docs, by name: the file under docs/, the begin marker.
PAGES: dict[str, tuple[str, str]] = {
    "scan": ("docs/scan.md", DOCS_BEGIN),
    "detect": (
        "docs/detect.md",
        "<!-- rules:begin detect (generated from slipstream._impl.core.rules by "
        'rules_markdown("detect"); do not edit by hand) -->',
    ),
}

# What the run-time detector (``ss.watch``, ``ss.QueryTiming``) counts for each rule it reports;
# the rules with an entry are the ones docs/detect.md documents.
RUNTIME: dict[str, str] = {
    "SLP201": (
        "one scope sees the same SELECT fingerprint (or HTTP GET / HEAD request) from the same "
        "call site `min_repeats` times"
    ),
    "SLP202": (
        "one scope sees the same INSERT, UPDATE or DELETE fingerprint (or HTTP POST, PUT, PATCH "
        "or DELETE request) from the same call site `min_repeats` times"
    ),
    "SLP203": "one scope sees a commit from the same call site `min_repeats` times",
}

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


def _page(page: str) -> tuple[str, str]:
    try:
        return PAGES[page]
    except KeyError:
        raise ValueError(f"'page' must be one of {', '.join(PAGES)}; got {page!r}") from None


def _runtime_markdown() -> str:
    """The rules part of ``docs/detect.md``: the run-time rules' table (what the detector
    counts, the fix), then each one's :meth:`Rule.doc` under ``### Rules``, each followed by
    what the detector counts for it."""
    runtime = [r for r in RULES if r.code in RUNTIME]
    parts = [
        "### Rules",
        "",
        "| Code | Name | Severity | Fires at run time when | Fix |",
        "|---|---|---|---|---|",
    ]
    parts += [
        f"| [{r.code}](#{r.code.lower()}-{r.name}) | {r.name} | {r.severity} "
        f"| {_cell(RUNTIME[r.code])} | {_cell(r.fix)} |"
        for r in runtime
    ]
    parts += [
        "",
        "Each rule's documentation is the scanner's (`slipstream rule SLP201` prints it; "
        "[scan.md](scan.md#rules) has every rule), followed by what the run-time detector "
        "counts for it.",
    ]
    text = "\n".join(parts) + "\n"
    for r in runtime:
        counted = f"## At run time\nFires when {RUNTIME[r.code]} (see [Gates](#gates)).\n"
        text += "\n" + _nest(f"{r.doc()}\n{counted}", 3)
    return text


def rules_markdown(page: str = "scan") -> str:
    """The generated rules part of ``docs/<page>.md``.

    ``"scan"``: a table of every rule, then each rule's :meth:`Rule.doc` with its headings
    nested under ``## Rules``. ``"detect"``: the same for the rules in :data:`RUNTIME`, with
    what the run-time detector counts for each.

    Raises:
        ValueError: ``page`` is not one of :data:`PAGES`.
    """
    _page(page)
    if page == "detect":
        return _runtime_markdown()
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


def update_docs(text: str, page: str = "scan") -> str:
    """``text`` (the contents of ``docs/<page>.md``) with the generated rules part, between
    the page's begin marker and :data:`DOCS_END`, replaced by :func:`rules_markdown`.

    Raises:
        ValueError: ``page`` is unknown, or its begin marker or the end marker is missing.
    """
    marker = _page(page)[1]
    begin = text.find(marker)
    end = text.find(DOCS_END, begin) if begin >= 0 else -1
    if end < 0:
        raise ValueError(f"the markers {marker!r} and {DOCS_END!r} must both be present")
    head = text[: begin + len(marker)]
    return f"{head}\n\n{rules_markdown(page)}\n{text[end:]}"


def write_docs(path: str | os.PathLike[str], page: str = "scan") -> bool:
    """Regenerate the rules part of the Markdown file at ``path`` (the page ``page``, one of
    :data:`PAGES`); True if it changed. ``make docs`` runs it for every page."""
    target = Path(path)
    current = target.read_text(encoding="utf-8")
    updated = update_docs(current, page)
    if updated != current:
        target.write_text(updated, encoding="utf-8")
    return updated != current
