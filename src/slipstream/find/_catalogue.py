"""The rule catalogue: one table of every rule's code, name, severity, fix and documentation,
shared by the scanner, its reporters, ``slipstream rule`` and the runtime detectors."""

from __future__ import annotations

from ._model import Rule

__all__ = ["RULES", "rule"]

# Filled in by the catalogue's author: one Rule per code, in code order.
RULES: tuple[Rule, ...] = ()

_BY_KEY = {r.code: r for r in RULES} | {r.name: r for r in RULES}


def rule(key: str) -> Rule:
    """The rule with code ``key`` (``"SLP201"``) or name (``"query-in-loop"``)."""
    try:
        return _BY_KEY[key.upper() if key[:3].lower() == "slp" else key]
    except KeyError:
        raise KeyError(f"no rule {key!r}; known: {', '.join(r.code for r in RULES)}") from None
