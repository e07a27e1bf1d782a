"""The stores a ``Cache`` keeps entries in: memory (default), a SQLite file, or Redis.

``open_store`` builds the one store a cache holds: the memory store as it is, or a shared
backend inside ``SerializedStore(GuardedStore(...))``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..guard import GuardedStore
from ..serializers import SerializedStore, Serializer
from ..store import Store
from .memory import MemoryStore, default_size
from .redis import RedisStore
from .sqlite import SQLiteStore

__all__ = ["MemoryStore", "RedisStore", "SQLiteStore", "default_size", "open_store"]


def open_store(
    *,
    sqlite_path: str | os.PathLike[str] | None,
    redis: Any,
    serializer: Serializer,
    max_entries: int,
    max_bytes: int | None,
    size_of: Callable[[Any], int] | None,
    retry_s: float,
    on_evict: Callable[[int], None],
    on_error: Callable[[], None],
) -> Store[Any]:
    """The store for a ``Cache``'s options: SQLite if ``sqlite_path``, Redis if ``redis``
    (values serialised, failures guarded), else memory."""
    backend: Store[bytes]
    if sqlite_path is not None:
        backend = SQLiteStore(sqlite_path, max_entries=max_entries)
    elif redis is not None:
        backend = RedisStore(redis)
    else:
        return MemoryStore(
            max_entries=max_entries,
            max_bytes=max_bytes,
            size_of=size_of or default_size,
            on_evict=on_evict,
        )
    return SerializedStore(GuardedStore(backend, retry_s=retry_s, on_error=on_error), serializer)
