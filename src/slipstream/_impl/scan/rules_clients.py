"""Rule family "clients": an expensive client built on every call of a function that runs
often, a request handler or a per-item function (SLP102). Built in a loop is SLP101
(``_rules_loops``)."""

from __future__ import annotations

from .effects import Effect, Project
from .facts import Call, Func
from .hit import Hit

__all__ = ["check"]


def check(project: Project, f: Func, call: Call, effects: list[Effect]) -> list[Hit]:
    if call.loop >= 0 and not f.loops[call.loop].skip:
        return []  # SLP101
    if not (f.handler or f.qualname in project.per_item) or f.memoised:
        return []
    for e in effects:
        if e.kind == "client":
            kind = "request handler" if f.handler else "per-item function"
            via = f" (through {e.chain[0].function})" if e.chain else ""
            return [
                Hit(
                    "SLP102",
                    call,
                    f"`{e.what}` builds a {e.type or 'client'} on every "
                    f"call of {kind} `{f.name}`{via}: build it once and share it",
                    e.chain,
                )
            ]
    return []
