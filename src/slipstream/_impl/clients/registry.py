"""A keyed registry of expensive clients: created once, shared, checked, and closed in order.

Seed 000 created a storage client (200-500 ms: DNS, TLS, auth, bucket check) and an LLM client
for every asset x schema. Its fix, a module dict keyed by ``id(settings)``, breaks when settings
are rebuilt, can hand back a stale client once an id is reused, creates duplicates when two
tasks ask at once, and closes nothing. ``Registry`` keys by ``(name, fingerprint(settings))``,
creates under single flight, keeps loop-bound clients on their loop, forgets the parent's
clients in a forked child, health-checks and ages clients, and closes what it made in reverse
order of creation.

Example::

    async with ss.Registry() as registry:
        storage = await registry.get("storage", make_minio, settings.storage)
        llm = await registry.get("llm", make_llm_client, settings.llm)
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar, cast, final

from ..core.clock import now as _now
from ..core.errors import RegistryClosed
from ..core.keys import fingerprint

__all__ = ["ProviderStatistics", "Registry", "default_registry"]

logger = logging.getLogger("slipstream.registry")
T = TypeVar("T")

Factory = Callable[..., "T | Awaitable[T]"]
Alive = Callable[[Any], "bool | Awaitable[bool]"]


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
class _Entry:
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


_registries: weakref.WeakSet[Registry] = weakref.WeakSet()


def _forget_after_fork() -> None:
    for registry in list(_registries):
        registry._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


async def close_object(obj: Any) -> None:
    """Close ``obj`` the way it offers: ``aclose()``, ``close()``, ``__aexit__``, ``__exit__``."""
    for method in ("aclose", "close"):
        closer = getattr(obj, method, None)
        if callable(closer):
            result = closer()
            if inspect.isawaitable(result):
                await result
            return
    if hasattr(obj, "__aexit__"):
        await obj.__aexit__(None, None, None)
    elif hasattr(obj, "__exit__"):
        obj.__exit__(None, None, None)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@final
class Registry:
    """Create expensive clients once per (name, settings, event loop) and close them at the end.

    Args:
        name: shown in logs and ``repr``.

    A key is ``(name, fingerprint(settings))``: equal settings (a dataclass, a pydantic model, a
    mapping, a string...) give the same client even when rebuilt; different settings give
    another. A client made by an async factory belongs to the loop that made it; another loop
    gets its own.
    """

    def __init__(self, name: str = "registry") -> None:
        self.name = name
        self._entries: dict[tuple[str, str, int], _Entry] = {}
        self._inflight: dict[tuple[str, str, int], asyncio.Future[_Entry]] = {}
        self._creations: set[asyncio.Task[_Entry]] = set()
        self._sync_locks: dict[tuple[str, str, int], threading.Lock] = {}
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, str], _Counters] = {}
        self._seq = 0
        self._closed = False
        _registries.add(self)

    # -- getting ----------------------------------------------------------------------------

    async def get(
        self,
        name: str,
        factory: Callable[..., T | Awaitable[T]],
        settings: Any = None,
        *,
        alive: Alive | None = None,
        max_age_s: float | None = None,
        max_idle_s: float | None = None,
        close: Callable[[Any], Any] | None = None,
    ) -> T:
        """The client for ``(name, settings)``, created by ``factory(settings)`` on first use.

        ``factory`` is called with ``settings`` when it is not None, else with no argument; it may
        be sync or async. 1,000 concurrent first calls make one factory call; if it fails, all
        of them get its error and the next call tries again; a cancelled caller does not cancel
        the creation for the others.

        Args:
            alive: optional health check ``alive(client) -> bool`` (sync or async), run on reuse;
                a client that fails it (or raises) is closed and created anew.
            max_age_s: recreate a client older than this.
            max_idle_s: recreate a client unused for longer than this.
            close: how to close the client (``close(client)``, sync or async), for objects
                without ``aclose``/``close``/``__aexit__`` (a SQLAlchemy engine's ``dispose``).

        Raises:
            RegistryClosed: the registry was closed.
            TypeError: the factory returned None, or ``settings`` cannot be fingerprinted.
        """
        self._check_open(name)
        loop = asyncio.get_running_loop()
        fp = fingerprint(settings, "settings")
        key = (name, fp, id(loop))
        entry = self._entries.get(key)
        if entry is not None and (entry.loop is None or entry.loop() is not loop):
            # id(loop) was reused by a new loop: the old client belongs to a dead loop
            self._drop(key, entry)
            entry = None
        if entry is not None and await self._usable(key, entry, alive, max_age_s, max_idle_s):
            return cast(T, self._hit(entry, fp))
        flight = self._inflight.get(key)
        if flight is not None and flight.get_loop() is not loop:
            flight = None  # left over from a closed loop whose id() was reused
        if flight is None:
            flight = loop.create_future()
            self._inflight[key] = flight
            creation = loop.create_task(self._create(key, name, fp, factory, settings, loop, close))
            self._creations.add(creation)  # a strong reference: the loop keeps only weak ones
            creation.add_done_callback(functools.partial(self._settle, key, flight))
        # shield: a waiter's cancellation must not cancel the creation for the others
        created = await asyncio.shield(flight)
        return cast(T, created.obj)

    def _settle(
        self, key: tuple[str, str, int], flight: asyncio.Future[_Entry], task: asyncio.Task[_Entry]
    ) -> None:
        self._creations.discard(task)
        if self._inflight.get(key) is flight:
            del self._inflight[key]
        if flight.done():
            return
        if task.cancelled():
            if self._closed:  # aclose() cancelled it: the waiters learn why
                flight.set_exception(RegistryClosed(self.name, key[0]))
                flight.exception()
            else:
                flight.cancel()
        elif task.exception() is not None:
            flight.set_exception(cast(BaseException, task.exception()))
            flight.exception()  # mark retrieved: a flight nobody awaits must not warn
        else:
            flight.set_result(task.result())

    async def _create(
        self,
        key: tuple[str, str, int],
        name: str,
        fp: str,
        factory: Callable[..., Any],
        settings: Any,
        loop: asyncio.AbstractEventLoop,
        close: Callable[[Any], Any] | None,
    ) -> _Entry:
        start = _now()
        obj = factory(settings) if settings is not None else factory()
        if inspect.isawaitable(obj):
            obj = await obj
        try:
            return self._store(key, name, fp, obj, start, settings, weakref.ref(loop), close)
        except RegistryClosed:
            # closed while the factory ran: what it made is ours to close, or it leaks
            await self._close_made(name, fp, obj, close)
            raise

    async def _close_made(
        self, name: str, fp: str, obj: Any, close: Callable[[Any], Any] | None
    ) -> None:
        entry = _Entry(name, obj, True, 0.0, 0.0, None, 0, "", close, fp)
        try:
            await self._close_entry(entry)
        except Exception:
            logger.warning("closing %r made during aclose() raised", name, exc_info=True)

    def get_sync(
        self,
        name: str,
        factory: Callable[..., T],
        settings: Any = None,
        *,
        alive: Callable[[Any], bool] | None = None,
        max_age_s: float | None = None,
        max_idle_s: float | None = None,
        close: Callable[[Any], Any] | None = None,
    ) -> T:
        """``get`` for sync code and sync factories; thread-safe single flight. Clients made
        here belong to no event loop."""
        self._check_open(name)
        fp = fingerprint(settings, "settings")
        key = (name, fp, 0)
        with self._lock:
            lock = self._sync_locks.setdefault(key, threading.Lock())
        with lock:
            entry = self._entries.get(key)
            if entry is not None:
                if self._fresh(entry, max_age_s, max_idle_s) and self._alive_sync(entry, alive):
                    return cast(T, self._hit(entry, fp))
                if self._drop(key, entry):
                    self._close_sync(entry)
            self._check_open(name)
            start = _now()
            obj = factory(settings) if settings is not None else factory()
            if inspect.isawaitable(obj):
                if inspect.iscoroutine(obj):
                    obj.close()
                raise TypeError(f"the factory for {name!r} is async; use 'await registry.get(...)'")
            try:
                entry = self._store(key, name, fp, obj, start, settings, None, close)
            except RegistryClosed:
                self._close_sync(_Entry(name, obj, True, 0.0, 0.0, None, 0, "", close, fp))
                raise
            return cast(T, entry.obj)

    def register(self, name: str, obj: Any, settings: Any = None) -> None:
        """Add a borrowed object under ``(name, settings)``. It is handed out, never closed."""
        self._check_open(name)
        if obj is None:
            raise TypeError(f"cannot register None as {name!r}")
        fp = fingerprint(settings, "settings")
        now = _now()
        with self._lock:
            self._seq += 1
            self._entries[(name, fp, 0)] = _Entry(
                name, obj, False, now, now, None, self._seq, _short(settings)
            )

    # -- reuse checks -----------------------------------------------------------------------

    def _hit(self, entry: _Entry, fp: str) -> Any:
        entry.used_at = _now()
        self._counter(entry.name, fp).hits += 1
        logger.debug("reusing %r (%s)", entry.name, fp[:8])
        return entry.obj

    def _fresh(self, entry: _Entry, max_age_s: float | None, max_idle_s: float | None) -> bool:
        if not entry.owned:
            return True
        now = _now()
        if max_age_s is not None and now - entry.created_at > max_age_s:
            return False
        return not (max_idle_s is not None and now - entry.used_at > max_idle_s)

    @staticmethod
    def _alive_sync(entry: _Entry, alive: Callable[[Any], bool] | None) -> bool:
        if alive is None or not entry.owned:
            return True
        try:
            return bool(alive(entry.obj))
        except Exception:
            logger.warning("health check of %r raised; recreating it", entry.name, exc_info=True)
            return False

    async def _usable(
        self,
        key: tuple[str, str, int],
        entry: _Entry,
        alive: Alive | None,
        max_age_s: float | None,
        max_idle_s: float | None,
    ) -> bool:
        ok = self._fresh(entry, max_age_s, max_idle_s)
        if ok and alive is not None and entry.owned:
            try:
                verdict = alive(entry.obj)
                ok = bool(await verdict) if inspect.isawaitable(verdict) else bool(verdict)
            except Exception:
                logger.warning("health check of %r raised", entry.name, exc_info=True)
                ok = False
        if ok:
            return True
        logger.info("recreating %r: too old, idle or unhealthy", entry.name)
        if self._drop(key, entry):  # only the caller that removed it closes it
            await self._close_entry(entry)
        return False

    # -- bookkeeping ------------------------------------------------------------------------

    def _counter(self, name: str, fp: str) -> _Counters:
        counters = self._counters.get((name, fp))
        if counters is None:
            counters = self._counters[(name, fp)] = _Counters()
        return counters

    def _store(
        self,
        key: tuple[str, str, int],
        name: str,
        fp: str,
        obj: Any,
        start: float,
        settings: Any,
        loop: weakref.ReferenceType[asyncio.AbstractEventLoop] | None,
        close: Callable[[Any], Any] | None = None,
    ) -> _Entry:
        seconds = _now() - start
        if obj is None:
            raise TypeError(f"the factory for {name!r} returned None; nothing was registered")
        now = _now()
        with self._lock:
            self._seq += 1
            entry = _Entry(name, obj, True, now, now, loop, self._seq, _short(settings), close, fp)
            if self._closed:  # closed while we were creating: do not leak it
                raise RegistryClosed(self.name, name)
            self._entries[key] = entry
        counters = self._counter(name, fp)
        counters.creations += 1
        counters.creation_s += seconds
        counters.last_creation_s = seconds
        logger.info("created %r (%s) in %.3fs", name, fp[:8], seconds)
        return entry

    def _drop(self, key: tuple[str, str, int], entry: _Entry) -> bool:
        with self._lock:
            if self._entries.get(key) is entry:
                del self._entries[key]
                return True
            return False

    def _check_open(self, name: str) -> None:
        if self._closed:
            raise RegistryClosed(self.name, name)

    def _after_fork(self) -> None:
        """In a forked child: the parent's clients (sockets, threads) are not ours to use."""
        self._entries.clear()
        self._inflight.clear()
        self._sync_locks.clear()
        self._lock = threading.Lock()

    # -- closing ----------------------------------------------------------------------------

    async def _close_entry(self, entry: _Entry) -> None:
        if not entry.owned:
            return
        if entry.close is not None:
            result = entry.close(entry.obj)
            if inspect.isawaitable(result):
                await result
        else:
            await close_object(entry.obj)
        self._counter(entry.name, entry.fp).closes += 1

    def _close_sync(self, entry: _Entry) -> None:
        if entry.owned:
            closer = (
                functools.partial(entry.close, entry.obj)
                if entry.close is not None
                else getattr(entry.obj, "close", None)
            )
            if callable(closer):
                result = closer()
                if inspect.iscoroutine(result):
                    result.close()
                    raise TypeError(f"{entry.name!r} closes asynchronously; use 'await aclose()'")

    async def clear(self) -> None:
        """Close every client this registry created (newest first) and forget all entries."""
        with self._lock:
            entries = sorted(self._entries.values(), key=lambda e: e.seq, reverse=True)
            self._entries.clear()
        errors: list[Exception] = []
        for entry in entries:
            try:
                await self._close_entry(entry)
            except Exception as exc:  # keep closing the rest; report every failure after
                exc.add_note(f"slipstream: while closing {entry.name!r}")
                errors.append(exc)
        if errors:
            raise ExceptionGroup(f"{len(errors)} client(s) failed to close", errors)

    async def aclose(self) -> None:
        """Close everything created, in reverse order of creation; the registry is then closed
        (``get`` raises ``RegistryClosed``). Borrowed objects are not closed.

        Creations still running on this loop are cancelled and awaited first (their waiters
        get ``RegistryClosed``); a factory that returns anyway has its client closed, so when
        ``aclose`` returns nothing made by this registry is left open."""
        self._closed = True
        loop = asyncio.get_running_loop()
        running = [t for t in self._creations if t.get_loop() is loop and not t.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        await self.clear()

    async def __aenter__(self) -> Registry:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- looking ----------------------------------------------------------------------------

    def statistics(self) -> dict[str, ProviderStatistics]:
        """Per key (``name`` or ``name[fingerprint]``): creations, hits, creation seconds."""
        live = {(e.name, k[1]) for k, e in self._entries.items()}
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
        """What seed 000's ``get_cache_status`` reported: how many clients are cached, for which
        keys, how old, and how often they were reused."""
        now = _now()
        providers = []
        for (name, fp, _), e in sorted(self._entries.items(), key=lambda kv: kv[1].seq):
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
            "registry": self.name,
            "closed": self._closed,
            "cached_providers": len(providers),
            "providers": providers,
        }

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Registry {self.name!r} {state} clients={len(self._entries)}>"


_default: Registry | None = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """The process-wide registry (made on first use; a forked child starts with it empty)."""
    global _default
    if _default is None or _default._closed:
        with _default_lock:
            if _default is None or _default._closed:
                _default = Registry("default")
    return _default
