"""A ``Cache``'s counters, and the snapshot of them its ``statistics()`` returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

__all__ = ["CacheStatistics", "Counters"]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class CacheStatistics:
    """A snapshot of a ``Cache``'s counters.

    ``misses`` counts lookups that started a load; ``joins`` lookups that found one running and
    waited for it (single flight), so ``misses`` is also the number of loads. ``errors`` counts
    backend calls that failed or were skipped while the backend was down. ``entries`` and
    ``bytes`` are None ("unknown") for SQLite and Redis: counting them would cost a scan of the
    store on every call."""

    hits: int
    misses: int
    stale_hits: int
    joins: int
    evictions: int
    errors: int
    refreshes: int
    unserialisable: int
    entries: int | None
    bytes: int | None

    @property
    def hit_ratio(self) -> float:
        """Hits (fresh or stale) over all lookups (hits, misses and joins)."""
        lookups = self.hits + self.stale_hits + self.misses + self.joins
        return (self.hits + self.stale_hits) / lookups if lookups else 0.0


class Counters:
    """The live counts, bumped in place on the hot paths (a slot each, no lock: a count that
    two threads bump at once may lose one, which a statistic can afford)."""

    __slots__ = (
        "errors",
        "evictions",
        "hits",
        "joins",
        "misses",
        "refreshes",
        "stale_hits",
        "unserialisable",
    )

    def __init__(self) -> None:
        self.hits = self.misses = self.stale_hits = self.joins = 0
        self.evictions = self.errors = self.refreshes = self.unserialisable = 0

    def count_evictions(self, n: int) -> None:
        """The memory store evicted ``n`` entries to stay within its bounds."""
        self.evictions += n

    def count_error(self) -> None:
        """A backend operation failed or was skipped."""
        self.errors += 1
