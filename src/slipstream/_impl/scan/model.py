"""What the scanner hands out: a :class:`Finding` (frozen, typed), each with the call ``chain``
that leads from the reported line to the effect, and the :class:`Rule` it breaks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from ..core.rules.rule import SEVERITIES, Rule, Severity
from ..core.runtime import RuntimeFinding

__all__ = [
    "SEVERITIES",
    "ChainStep",
    "Finding",
    "Measured",
    "Rule",
    "RuntimeFinding",
    "RuntimeJoin",
    "Severity",
]


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


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Measured:
    """What ran at a static finding's call sites: the run-time findings joined to it (see
    ``scan.runtime_join``), their ``count`` and ``total_s`` summed."""

    count: int
    total_s: float
    seen: tuple[RuntimeFinding, ...]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeJoin:
    """A scan joined with run-time findings (``slipstream scan --runtime FILE``).

    ``ran`` pairs each static finding that ran with what was measured there; ``unmatched``
    holds the run-time findings no static finding accounts for (largest cost first);
    ``sources`` the runtime files read."""

    sources: tuple[str, ...]
    ran: tuple[tuple[Finding, Measured], ...]
    unmatched: tuple[RuntimeFinding, ...]

    def by_finding(self) -> dict[Finding, Measured]:
        """``ran`` as a dict, for lookups."""
        return dict(self.ran)
