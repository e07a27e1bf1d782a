"""The registry's books: which clients are cached under which key, and what each key has cost.

``Providers`` holds the entries (one client per ``(name, fingerprint, loop id)``) and the
counters per ``(name, fingerprint)`` that outlive them (creations, hits, creation seconds,
closes), and answers ``statistics()`` and ``status()`` from them. It decides nothing about
creating or closing: that is ``Registry``'s, which keeps one ``Providers`` under its lock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, final

from ..core.clock import now as _now
from ..core.errors import RegistryClosed

__all__ = ["Entry", "Key", "ProviderStatistics", "Providers"]

logger = logging.getLogger("slipstream.registry")

Key = tuple[str, str, int]  # (name, fingerprint of the settings, id of the loop or 0)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderStatistics:
    """Per key: how often it was created, reused and closed, and what creating it cost."""

    name: str
    creations: int
    hits: int
    creation_s: float
    last_creation_s: float
    closes: int
    alive: bool


@dataclass(slots=True)
class _Counters:
    creations: int = 0
    hits: int = 0
    creation_s: float = 0.0
    last_creation_s: float = 0.0
    closes: int = 0


@dataclass(slots=True)
class Entry:
    """One cached client: ``owned`` when the registry made it (and so closes it)."""

    name: str
    obj: Any
    owned: bool
    created_at: float
    used_at: float
    loop: weakref.ReferenceType[asyncio.AbstractEventLoop] | None
    seq: int
    settings_repr: str = ""
    close: Callable[[Any], Any] | None = None
    fp: str = ""

    @classmethod
    def orphan(cls, key: Key, obj: Any, close: Callable[[Any], Any] | None) -> Entry:
        """A client its factory made after the registry closed: never stored, only closed."""
        return cls(key[0], obj, True, 0.0, 0.0, None, 0, "", close, key[1])


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Providers:
    """The entries and counters of one registry (see the module). ``closed`` refuses new
    entries: a client created while the registry closed is the creator's to close."""

    __slots__ = ("_counters", "_seq", "closed", "entries", "lock", "registry")

    def __init__(self, registry: str) -> None:
        self.registry = registry
        self.entries: dict[Key, Entry] = {}
        self.lock = threading.Lock()
        self.closed = False
        self._counters: dict[tuple[str, str], _Counters] = {}
        self._seq = 0

    def _counter(self, name: str, fp: str) -> _Counters:
        counters = self._counters.get((name, fp))
        if counters is None:
            counters = self._counters[(name, fp)] = _Counters()
        return counters

    # -- entries ------------------------------------------------------------------------------

    def borrow(self, key: Key, obj: Any, settings: Any) -> None:
        """Add an object the registry hands out but never closes."""
        now = _now()
        with self.lock:
            self._seq += 1
            self.entries[key] = Entry(
                key[0], obj, False, now, now, None, self._seq, _short(settings), None, key[1]
            )

    def store(
        self,
        key: Key,
        obj: Any,
        start: float,
        settings: Any,
        loop: weakref.ReferenceType[asyncio.AbstractEventLoop] | None,
        close: Callable[[Any], Any] | None,
    ) -> Entry:
        """Keep a client its factory made from ``start`` until now, and count the creation.

        Raises:
            TypeError: the factory returned None.
            RegistryClosed: the registry closed meanwhile (``obj`` is the caller's to close).
        """
        name, fp, _ = key
        now = _now()
        seconds = now - start
        if obj is None:
            raise TypeError(f"the factory for {name!r} returned None; nothing was registered")
        with self.lock:
            self._seq += 1
            entry = Entry(name, obj, True, now, now, loop, self._seq, _short(settings), close, fp)
            if self.closed:  # closed while we were creating: do not leak it
                raise RegistryClosed(self.registry, name)
            self.entries[key] = entry
        counters = self._counter(name, fp)
        counters.creations += 1
        counters.creation_s += seconds
        counters.last_creation_s = seconds
        logger.info("created %r (%s) in %.3fs", name, fp[:8], seconds)
        return entry

    def hit(self, entry: Entry) -> Any:
        """Hand out a cached client, counting the reuse."""
        entry.used_at = _now()
        self._counter(entry.name, entry.fp).hits += 1
        logger.debug("reusing %r (%s)", entry.name, entry.fp[:8])
        return entry.obj

    @staticmethod
    def fresh(entry: Entry, max_age_s: float | None, max_idle_s: float | None) -> bool:
        """Not older than ``max_age_s`` nor unused for longer than ``max_idle_s`` (a borrowed
        object always is: the registry does not replace what it did not make)."""
        if not entry.owned:
            return True
        now = _now()
        if max_age_s is not None and now - entry.created_at > max_age_s:
            return False
        return not (max_idle_s is not None and now - entry.used_at > max_idle_s)

    def drop(self, key: Key, entry: Entry) -> bool:
        """Remove ``entry`` if it is still the one under ``key``; True for the one caller that
        removed it (and so closes it)."""
        with self.lock:
            if self.entries.get(key) is entry:
                del self.entries[key]
                return True
            return False

    def take_all(self) -> list[Entry]:
        """Remove every entry, newest first (the order to close them in)."""
        with self.lock:
            entries = sorted(self.entries.values(), key=lambda e: e.seq, reverse=True)
            self.entries.clear()
        return entries

    def closed_one(self, entry: Entry) -> None:
        """Count that ``entry``'s client was closed."""
        self._counter(entry.name, entry.fp).closes += 1

    def after_fork(self) -> None:
        """In a forked child: forget the parent's clients; the counters stay as history."""
        self.entries.clear()
        self.lock = threading.Lock()

    # -- looking ------------------------------------------------------------------------------

    def statistics(self) -> dict[str, ProviderStatistics]:
        """Per key (``name`` or ``name[fingerprint]``): creations, hits, creation seconds."""
        live = {(e.name, k[1]) for k, e in self.entries.items()}
        names = [n for n, _ in self._counters]
        out: dict[str, ProviderStatistics] = {}
        for (name, fp), c in self._counters.items():
            label = name if names.count(name) == 1 else f"{name}[{fp[:8]}]"
            out[label] = ProviderStatistics(
                name=name,
                creations=c.creations,
                hits=c.hits,
                creation_s=c.creation_s,
                last_creation_s=c.last_creation_s,
                closes=c.closes,
                alive=(name, fp) in live,
            )
        return out

    def status(self) -> dict[str, Any]:
        """How many clients are cached, for which keys, how old, and how often reused: what
        a health endpoint shows."""
        now = _now()
        providers = []
        for (name, fp, _), e in sorted(self.entries.items(), key=lambda kv: kv[1].seq):
            c = self._counters.get((name, fp), _Counters())
            providers.append(
                {
                    "name": name,
                    "fingerprint": fp,
                    "settings": e.settings_repr,
                    "type": type(e.obj).__qualname__,
                    "owned": e.owned,
                    "age_s": round(now - e.created_at, 3),
                    "idle_s": round(now - e.used_at, 3),
                    "hits": c.hits,
                    "creations": c.creations,
                }
            )
        return {
            "registry": self.registry,
            "closed": self.closed,
            "cached_providers": len(providers),
            "providers": providers,
        }
