"""``ss.prefetch``: fetch many rows by key in chunks, for sync code (``DataLoader``'s
counterpart where there is no event loop to coalesce loads on)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TypeVar

from ..core.checks import check_callable, check_int

__all__ = ["prefetch"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def prefetch(
    keys: Iterable[K],
    fetch_many: Callable[[list[K]], Mapping[K, V] | Iterable[V]],
    *,
    batch_size: int = 500,
    key: Callable[[V], K] | None = None,
) -> dict[K, V]:
    """Fetch many rows by key in chunks, for sync code: one ``WHERE id IN (...)`` per chunk.

    A "pre-fetch" with one ``session.get`` per id makes a round trip per key; this makes
    ``ceil(len(unique keys) / batch_size)`` calls of ``fetch_many(chunk)`` instead.

    Args:
        keys: the ids (duplicates are fetched once).
        fetch_many: returns a mapping ``id -> row``, or rows (then ``key`` gives a row's id).
        batch_size: ids per call (stay under the driver's parameter limit).
        key: how to read the id of a returned row.

    Returns:
        ``{id: row}`` for the ids that were found.
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    check_callable("fetch_many", fetch_many)
    check_callable("key", key, allow_none=True)
    unique = list(dict.fromkeys(keys))
    found: dict[K, V] = {}
    for start in range(0, len(unique), batch_size):
        rows = fetch_many(unique[start : start + batch_size])
        if isinstance(rows, Mapping):
            found.update(rows)
            continue
        if key is None:
            raise TypeError(
                "fetch_many returned rows, not a mapping; pass key= to read each row's id"
                "\nHINT: ss.prefetch(ids, fetch, key=lambda row: row.id)"
            )
        for row in rows:
            found[key(row)] = row
    return found
