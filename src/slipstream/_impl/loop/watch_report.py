"""What a LoopWatch tells: a report per stall (blocked or starved) and its running statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, final

__all__ = ["BlockReport", "BusyThread", "LoopWatchStatistics"]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class BusyThread:
    """A thread that ran while the loop was starved: ``cpu_s`` of CPU in the sampled part of the
    episode, seen last in ``function`` at ``filename:lineno`` (its innermost frame of user code)."""

    name: str
    cpu_s: float
    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        return (
            f"{self.name} at {self.filename}:{self.lineno} {self.function} "
            f"({self.cpu_s * 1000:.0f} ms CPU)"
        )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class BlockReport:
    """The loop answered nothing for at least ``blocked_s``.

    ``kind="blocked"``: one call held the loop; ``function`` at ``filename:lineno`` is the
    innermost frame of the user's code in it (the innermost non-asyncio frame when no frame is
    the user's), ``inside`` the library frame it was in (``"os._walk at <frozen os>:368"``, or
    None when the user's frame was the innermost). ``kind="starved"``: the loop thread was
    runnable but other threads had the GIL or the CPU; ``threads`` names them (busiest first),
    and ``function``/``filename``/``lineno`` repeat the busiest one's frame. ``stack`` is the
    loop thread's stack (innermost frames).
    """

    blocked_s: float
    filename: str
    lineno: int
    function: str
    stack: str
    inside: str | None = None
    kind: Literal["blocked", "starved"] = "blocked"
    threads: tuple[BusyThread, ...] = ()

    def __str__(self) -> str:
        ms = f"{self.blocked_s * 1000:.0f} ms"
        if self.kind == "starved":
            n = len(self.threads)
            shown = ", ".join(str(t) for t in self.threads[:4])
            more = f", and {n - 4} more" if n > 4 else ""
            return (
                f"event loop starved for {ms}: the loop thread was runnable but {n} busy "
                f"thread{'s' if n != 1 else ''} held the GIL: {shown}{more}"
            )
        inside = f" (inside {self.inside})" if self.inside else ""
        return (
            f"event loop blocked for {ms} in {self.function} at {self.filename}:{self.lineno}"
            f"{inside}"
        )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class LoopWatchStatistics:
    """Lag quantiles over all beats; ``blocks`` and ``starved`` count the reports of each kind."""

    beats: int
    lag_p50_s: float
    lag_p99_s: float
    lag_max_s: float
    blocks: int
    reports: tuple[BlockReport, ...]
    starved: int = 0
