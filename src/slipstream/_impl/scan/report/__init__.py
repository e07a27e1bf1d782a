"""The scan's reporters: one :class:`ScanReport` rendered as ``text`` (for people and editors),
``json`` (for scripts), ``sarif`` (SARIF 2.1.0, for code-scanning services) or ``markdown`` (a
report to read or paste into an issue: findings grouped High / Medium / Low, each with its
code, why it costs time and the slipstream fix, before and after).

    print(render(scan_report("src"), "markdown"))

The text form is coloured and grouped by file with rich when it goes to a terminal (rich is an
optional extra; without it, or when piped, it is plain ``path:line:col: CODE name message``).
The formats live one module each: ``text``, ``markdown``, and ``machine`` (json and sarif);
``common`` holds what they share.
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import FORMATS
from ..engine import ScanReport
from .common import summary
from .machine import (
    FINGERPRINT_KEY,
    ROOT_ID,
    SARIF_LEVEL,
    SARIF_SCHEMA,
    finding_dict,
    fingerprint,
    to_json,
    to_sarif,
)
from .markdown import to_markdown
from .text import to_text

__all__ = [
    "FINGERPRINT_KEY",
    "FORMATS",
    "ROOT_ID",
    "SARIF_LEVEL",
    "SARIF_SCHEMA",
    "finding_dict",
    "fingerprint",
    "render",
    "summary",
    "to_json",
    "to_markdown",
    "to_sarif",
    "to_text",
]


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
