"""Rule family "loops": work done once per item that could be done once (SLP101, SLP103) or
for all items at once (SLP201, SLP202, SLP203), and awaits that could overlap (SLP301, a
DataLoader's ``load`` among them: awaited per item, each load is a batch of one key)."""

from __future__ import annotations

from .effects import Effect, Project
from .facts import Call, Func
from .hit import Hit

__all__ = ["check"]

_DB = ("query", "write", "commit")


def check(project: Project, f: Func, call: Call, effects: list[Effect]) -> list[Hit]:
    if call.loop < 0:
        return []
    loop = f.loops[call.loop]
    if loop.skip:
        return []
    where = f"the loop at line {loop.line}"
    hits: list[Hit] = []
    kinds = {e.kind: e for e in effects}
    for e in effects:
        via = f" (through {e.chain[0].function})" if e.chain else ""
        if e.kind == "client":
            hits.append(
                Hit(
                    "SLP101",
                    call,
                    f"`{e.what}` builds a {e.type or 'client'} on every "
                    f"iteration of {where}{via}: a new pool, handshake and credentials "
                    "per item",
                    e.chain,
                )
            )
        elif e.kind == "invariant" and call.invariant_args:
            hits.append(
                Hit(
                    "SLP103",
                    call,
                    f"`{e.what}` does the same expensive work on every "
                    f"iteration of {where}{via}: its inputs do not change in the loop",
                    e.chain,
                )
            )
        elif e.kind == "query":
            hits.append(
                Hit(
                    "SLP201",
                    call,
                    f"`{e.what}` runs one query per item in {where}{via} (N+1)",
                    e.chain,
                )
            )
        elif e.kind == "write":
            hits.append(
                Hit(
                    "SLP202",
                    call,
                    f"`{e.what}` writes one row per item in {where}{via}: one round trip each",
                    e.chain,
                )
            )
        elif e.kind == "commit":
            hits.append(
                Hit(
                    "SLP203",
                    call,
                    f"`{e.what}` commits once per item in {where}"
                    f"{via}: a disk flush and a round trip each",
                    e.chain,
                )
            )
    io = kinds.get("io")
    if (
        io is not None
        and call.awaited
        and loop.ok301
        and not call.in_lock
        and not any(k in kinds for k in _DB)
    ):
        via = f" (through {io.chain[0].function})" if io.chain else ""
        if io.type == "loader.DataLoader":
            message = (
                f"`await {io.what}` waits for a batch of its own on every iteration of "
                f"{where}{via}: a DataLoader batches only loads made concurrently, so this is "
                "one batch_fn call (one query) per item; load the keys at once with "
                "`await loader.load_many(keys)`"
            )
        else:
            message = (
                f"`await {io.what}` runs one at a time in {where}{via}; "
                "the iterations are independent and could overlap"
            )
        hits.append(Hit("SLP301", call, message, io.chain))
    return hits
