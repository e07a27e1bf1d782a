"""Rule family "event loop": blocking calls reached from ``async def`` (SLP401) and gathers
with no bound (SLP302). Dangling tasks (SLP502) and lazy-init races (SLP503) need only their
file and are found while its facts are extracted (``_facts``)."""

from __future__ import annotations

from .effects import Effect, Project
from .facts import Call, Func
from .hit import Hit

__all__ = ["check", "check_gathers"]


def check(project: Project, f: Func, call: Call, effects: list[Effect]) -> list[Hit]:
    if not f.is_async or f.qualname in project.threaded:
        return []
    for e in effects:
        if e.kind == "blocking":
            via = f" through {e.chain[0].function}" if e.chain else ""
            return [
                Hit(
                    "SLP401",
                    call,
                    f"`{e.what}` blocks the event loop{via} inside async "
                    f"`{f.name}`: every other request waits for it",
                    e.chain,
                )
            ]
    return []


_IO = ("io", "query", "write", "commit")


def check_gathers(project: Project, f: Func) -> list[Hit]:
    """A gather is reported only when each element is known to do I/O (a request, a query):
    gathering pure coroutines, or a handful of workers' ``close()``, costs nothing. Nor is a
    gather of DataLoader loads: they make one batch (of at most ``batch_size`` keys), not one
    call each."""
    hits = []
    for call, elt, _line in f.gathers:
        if elt is None:
            continue
        g, effect, typ = project.callee(elt)
        if typ == "loader.DataLoader":
            continue
        if g is not None:
            if g.bounded or not any(k in project.summary.get(g.qualname, {}) for k in _IO):
                continue
        elif effect not in _IO:
            continue
        hits.append(
            Hit(
                "SLP302",
                call,
                "`asyncio.gather(*...)` starts one task per item at "
                "once, with no bound on concurrency: a large input opens that many "
                "connections or requests together",
            )
        )
    return hits
