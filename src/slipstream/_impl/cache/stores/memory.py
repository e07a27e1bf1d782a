"""``MemoryStore``: the default store, an LRU dict with per-entry expiry in this process."""

from __future__ import annotations

import math
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any, cast

from ...core import clock as _clock
from ..store import FRESH, STALE, Target, Terms

__all__ = ["Item", "MemoryStore", "default_size"]


class Item:
    """One entry: its value, when it stops being fresh and stale, and what indexes it."""

    __slots__ = ("expires_at", "namespace", "size", "stale_until", "tags", "value")

    def __init__(
        self,
        value: Any,
        expires_at: float,
        stale_until: float,
        size: int,
        namespace: str,
        tags: tuple[str, ...],
    ) -> None:
        self.value = value
        self.expires_at = expires_at
        self.stale_until = stale_until
        self.size = size
        self.namespace = namespace
        self.tags = tags


def default_size(value: Any) -> int:
    """Bytes a value is counted as: its length for bytes and str, else ``sys.getsizeof``."""
    if isinstance(value, bytes | bytearray | memoryview | str):
        return len(value)
    return sys.getsizeof(value)


class MemoryStore:
    """An LRU dict with per-entry expiry, O(1) get, set and eviction, and a chunked sweep.

    Thread-safe: writes take a lock; a hit takes none (dict reads and ``move_to_end`` are
    atomic under the GIL; an entry evicted in between is simply a miss). ``data`` is the dict
    itself: ``@cached`` reads a fresh entry from it directly, which is the whole hit path.
    """

    kind = "memory"
    shared = False
    supports_sync = True

    def __init__(
        self,
        *,
        max_entries: int,
        max_bytes: int | None,
        size_of: Callable[[Any], int] = default_size,
        on_evict: Callable[[int], None] | None = None,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size_of = size_of
        self._on_evict = on_evict
        self.data: OrderedDict[Hashable, Item] = OrderedDict()
        self.nbytes = 0
        self._namespaces: dict[str, set[Hashable]] = {}
        self._tags: dict[str, set[Hashable]] = {}
        self._lock = threading.Lock()
        self._sweep_keys: list[Hashable] = []

    @property
    def entries(self) -> int:
        """How many entries are kept."""
        return len(self.data)

    def __len__(self) -> int:
        return len(self.data)

    # -- lookup and store -------------------------------------------------------------------

    def lookup_sync(self, key: Hashable) -> tuple[int, Any] | None:
        item = self.data.get(key)
        if item is None:
            return None
        now = _clock.clock()
        if now < item.expires_at:
            try:  # noqa: SIM105  # hot path: a context manager costs ~1 us
                self.data.move_to_end(key)
            except KeyError:
                pass
            return FRESH, item.value
        if now < item.stale_until:
            return STALE, item.value
        self.delete(key)
        return None

    async def lookup(self, key: Hashable) -> tuple[int, Any] | None:
        return self.lookup_sync(key)

    def store_sync(self, key: Hashable, value: Any, terms: Terms) -> None:
        ttl_s, stale_s, namespace, tags = terms
        now = _clock.clock()
        expires = math.inf if ttl_s is None else now + ttl_s
        size = self.size_of(value) if self.max_bytes is not None else 0
        if self.max_bytes is not None and size > self.max_bytes:
            return  # larger than the whole cache: never worth evicting everything for
        item = Item(value, expires, expires + stale_s, size, namespace, tags)
        evicted = 0
        with self._lock:
            old = self.data.pop(key, None)
            if old is not None:
                self._unindex(key, old)
            self.data[key] = item
            self.nbytes += size
            self._namespaces.setdefault(namespace, set()).add(key)
            for tag in tags:
                self._tags.setdefault(tag, set()).add(key)
            while len(self.data) > self.max_entries or (
                self.max_bytes is not None and self.nbytes > self.max_bytes
            ):
                old_key, old_item = self.data.popitem(last=False)
                self._unindex(old_key, old_item)
                evicted += 1
        if evicted and self._on_evict is not None:
            self._on_evict(evicted)

    async def store(self, key: Hashable, value: Any, terms: Terms) -> None:
        self.store_sync(key, value, terms)

    def _unindex(self, key: Hashable, item: Item) -> None:
        self.nbytes -= item.size
        keys = self._namespaces.get(item.namespace)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._namespaces[item.namespace]
        for tag in item.tags:
            tagged = self._tags.get(tag)
            if tagged is not None:
                tagged.discard(key)
                if not tagged:
                    del self._tags[tag]

    # -- removal ----------------------------------------------------------------------------

    def delete(self, key: Hashable) -> bool:
        """Remove the entry under ``key``; True if there was one."""
        with self._lock:
            item = self.data.pop(key, None)
            if item is None:
                return False
            self._unindex(key, item)
            return True

    def _delete_many(self, keys: Iterable[Hashable]) -> int:
        return sum(self.delete(k) for k in list(keys))

    def invalidate_sync(self, target: Target, value: Hashable) -> int:
        if target == "key":
            return int(self.delete(value))
        index = self._namespaces if target == "namespace" else self._tags
        return self._delete_many(index.get(cast(str, value), ()))

    async def invalidate(self, target: Target, value: Hashable) -> int:
        return self.invalidate_sync(target, value)

    async def clear(self) -> None:
        with self._lock:
            self.data.clear()
            self._namespaces.clear()
            self._tags.clear()
            self.nbytes = 0

    def sweep(self) -> int:
        removed = 0
        done = False
        while not done:
            n, done = self._sweep_chunk()
            removed += n
        return removed

    def _sweep_chunk(self, chunk: int = 5000) -> tuple[int, bool]:
        """Drop up to ``chunk`` entries' worth of expired items; (removed, finished)."""
        if not self._sweep_keys:
            self._sweep_keys = list(self.data.keys())
        batch, self._sweep_keys = self._sweep_keys[-chunk:], self._sweep_keys[:-chunk]
        now = _clock.clock()
        removed = 0
        for key in batch:
            item = self.data.get(key)
            if item is not None and item.stale_until <= now:
                removed += self.delete(key)
        return removed, not self._sweep_keys

    def close(self) -> None:
        """Nothing to release: the entries stay usable (a closed cache still answers)."""
