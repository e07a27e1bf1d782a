"""The ``Store`` protocol: where a ``Cache`` keeps its entries.

A store knows nothing of single flight, loaders or statistics; it keeps values with a fresh
period and a stale period, indexed by namespace and tags, on its own clock (memory: monotonic;
SQLite and Redis: wall time, because several processes share them).

The memory store keeps Python objects (``Store[Any]``); the SQLite and Redis stores keep bytes
(``Store[bytes]``), and a ``Cache`` reaches them through two layers that are stores themselves:
``SerializedStore`` (values to bytes and back) around ``GuardedStore`` (a failing backend is a
miss, behind a circuit breaker). So the ``Cache`` holds exactly one store and never asks which.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, Literal, NamedTuple, Protocol, TypeVar, final

__all__ = ["FRESH", "STALE", "Layer", "Store", "Target", "Terms"]

FRESH = 1
STALE = 2

Target = Literal["key", "namespace", "tag"]
"""What ``invalidate`` removes: the entry under one key, a namespace, or a tag's entries."""

V = TypeVar("V")


@final
class Terms(NamedTuple):
    """The terms an entry is kept on: fresh for ``ttl_s`` seconds (None: until evicted), then
    stale for ``stale_s`` more, in ``namespace``, with ``tags``. A ``@cached`` function builds
    its terms once, at decoration, when its tags do not depend on the call."""

    ttl_s: float | None
    stale_s: float
    namespace: str
    tags: tuple[str, ...]


class Store(Protocol[V]):
    """Where a ``Cache`` keeps its entries: values ``V`` under hashable keys, each with a
    fresh and a stale period, a namespace and tags.

    ``lookup`` answers ``(FRESH, value)``, ``(STALE, value)`` or None (absent or past its stale
    period). Each operation has an async form and a ``_sync`` one; a store that cannot serve
    sync callers says so with ``supports_sync = False`` and raises ``TypeError`` from them.
    """

    @property
    def kind(self) -> str:
        """A short name for reprs: ``"memory"``, ``"sqlite"``, ``"redis"``."""
        ...

    @property
    def shared(self) -> bool:
        """True when other processes read the entries too: keys must then be text that is the
        same in every process (a fingerprint), never a tuple of live objects."""
        ...

    @property
    def supports_sync(self) -> bool:
        """False for a store whose sync operations raise ``TypeError`` (async only)."""
        ...

    @property
    def entries(self) -> int | None:
        """How many entries are kept, or None where counting them would cost a scan."""
        ...

    @property
    def nbytes(self) -> int | None:
        """The summed size of the values kept, or None where it is not known."""
        ...

    async def lookup(self, key: Hashable) -> tuple[int, V] | None:
        """``(FRESH | STALE, value)`` under ``key``, or None."""
        ...

    def lookup_sync(self, key: Hashable) -> tuple[int, V] | None:
        """``lookup`` for sync callers."""
        ...

    async def store(self, key: Hashable, value: V, terms: Terms) -> None:
        """Keep ``value`` under ``key`` on ``terms``, replacing the entry there (its value,
        expiry, namespace and tags)."""
        ...

    def store_sync(self, key: Hashable, value: V, terms: Terms) -> None:
        """``store`` for sync callers."""
        ...

    async def invalidate(self, target: Target, value: Hashable) -> int:
        """Remove the entry under key ``value``, or every entry of namespace or tag ``value``;
        returns how many were removed."""
        ...

    def invalidate_sync(self, target: Target, value: Hashable) -> int:
        """``invalidate`` for sync callers."""
        ...

    async def clear(self) -> None:
        """Remove every entry."""
        ...

    def sweep(self) -> int:
        """Remove the entries past their stale period now; returns how many."""
        ...

    def close(self) -> None:
        """Release connections and threads (the entries stay where they are kept)."""
        ...


class Layer(Generic[V]):
    """The base of a store that wraps another: it answers the inner store's attributes, and
    closes it, so a layer writes only the operations it changes."""

    __slots__ = ("inner", "kind", "shared", "supports_sync")

    def __init__(self, inner: Store[V]) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.shared = inner.shared
        self.supports_sync = inner.supports_sync

    @property
    def entries(self) -> int | None:
        """The inner store's count."""
        return self.inner.entries

    @property
    def nbytes(self) -> int | None:
        """The inner store's size."""
        return self.inner.nbytes

    def close(self) -> None:
        """Close the inner store."""
        self.inner.close()
