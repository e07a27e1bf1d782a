"""What the scanner hands out: a :class:`Finding` (frozen, typed), each with the call ``chain``
that leads from the reported line to the effect, and the :class:`Rule` it breaks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from ..core.rules.rule import SEVERITIES, Rule, Severity

__all__ = ["SEVERITIES", "ChainStep", "Finding", "Rule", "Severity"]


@final
@dataclass(frozen=True, slots=True)
class ChainStep:
    """One call on the way from a finding's line to the effect: ``path:line function``."""

    path: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.function}"


@final
@dataclass(frozen=True, slots=True)
class Finding:
    """One place where code loses time, and the slipstream primitive that fixes it.

    ``path`` is relative to the scanned root (``/``-separated); lines are 1-based, columns
    0-based (as ``ast`` gives them). ``chain`` is empty when the effect is on the reported line
    itself; otherwise its steps go from the reported call to the line with the effect.
    ``fingerprint`` identifies the finding across edits that move lines (rule, path and the
    normalised code of the reported statement); ``excerpt`` is that code as written.
    """

    code: str
    name: str
    path: str
    line: int
    col: int
    end_line: int
    end_col: int
    message: str
    severity: Severity
    fix: str
    chain: tuple[ChainStep, ...] = ()
    fingerprint: str = ""
    excerpt: str = ""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col + 1}: {self.code} {self.name} {self.message}"
