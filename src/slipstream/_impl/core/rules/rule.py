"""One rule of the catalogue: its code, name, severity, the primitive that fixes it, its doc."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, final

__all__ = ["SEVERITIES", "Rule", "Severity"]

Severity = Literal["high", "medium", "low"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high")  # ascending


@final
@dataclass(frozen=True, slots=True)
class Rule:
    """One entry of the rule catalogue (shared by the scanner and the runtime detectors).

    ``summary``: what it finds, one line. ``fix``: the primitive it points at, one line.
    ``why``: why it costs time. ``example``: code it reports. ``fixed``: the same code with
    slipstream. ``options``: the configuration keys that change it (may be empty).
    """

    code: str
    name: str
    severity: Severity
    summary: str
    fix: str
    why: str
    example: str
    fixed: str
    options: str = ""
    family: str = field(default="")

    def doc(self) -> str:
        """The rule's documentation as ``slipstream rule CODE`` prints it (Markdown)."""
        parts = [
            f"# {self.code} {self.name}",
            "",
            f"Severity: {self.severity}",
            "",
            "## What it does",
            self.summary,
            "",
            "## Why is this bad?",
            self.why,
            "",
            "## Example",
            "```python",
            self.example.rstrip(),
            "```",
            "",
            "Use instead:",
            "```python",
            self.fixed.rstrip(),
            "```",
            "",
            "## Fix",
            self.fix,
        ]
        if self.options:
            parts += ["", "## Options", self.options]
        return "\n".join(parts) + "\n"
