"""A keyed registry of expensive clients: created once, shared, checked, and closed in order.

A storage client costs 200-500 ms to create (DNS, TLS, auth, bucket check); creating one per
item multiplies that by the input. The usual fix, a module dict keyed by ``id(settings)``,
breaks when settings are rebuilt, can hand back a stale client once an id is reused, creates
duplicates when two tasks ask at once, and closes nothing. ``Registry`` keys by ``(name,
fingerprint(settings))``, creates under single flight, keeps loop-bound clients on their loop,
forgets the parent's clients in a forked child, health-checks and ages clients, and closes what
it made in reverse order of creation. What is cached and what each key cost is kept in
``providers.Providers``; this module decides when to create, reuse and close.

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
from typing import Any, TypeVar, cast, final

from ..core.clock import now as _now
from ..core.errors import RegistryClosed
from ..core.keys import fingerprint
from ..core.resource import AsyncResource
from .providers import Entry, Key, Providers
from .providers import ProviderStatistics as ProviderStatistics

__all__ = ["ProviderStatistics", "Registry", "default_registry"]

logger = logging.getLogger("slipstream.registry")
T = TypeVar("T")

Alive = Callable[[Any], "bool | Awaitable[bool]"]


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


@final
class Registry(AsyncResource):
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
        self._books = Providers(name)
        self._inflight: dict[Key, asyncio.Future[Entry]] = {}
        self._creations: set[asyncio.Task[Entry]] = set()
        self._sync_locks: dict[Key, threading.Lock] = {}
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
        entry = self._books.entries.get(key)
        if entry is not None and (entry.loop is None or entry.loop() is not loop):
            # id(loop) was reused by a new loop: the old client belongs to a dead loop
            self._books.drop(key, entry)
            entry = None
        if entry is not None and await self._usable(key, entry, alive, max_age_s, max_idle_s):
            return cast(T, self._books.hit(entry))
        flight = self._inflight.get(key)
        if flight is not None and flight.get_loop() is not loop:
            flight = None  # left over from a closed loop whose id() was reused
        if flight is None:
            flight = loop.create_future()
            self._inflight[key] = flight
            creation = loop.create_task(self._create(key, factory, settings, loop, close))
            self._creations.add(creation)  # a strong reference: the loop keeps only weak ones
            creation.add_done_callback(functools.partial(self._settle, key, flight))
        # shield: a waiter's cancellation must not cancel the creation for the others
        created = await asyncio.shield(flight)
        return cast(T, created.obj)

    def _settle(self, key: Key, flight: asyncio.Future[Entry], task: asyncio.Task[Entry]) -> None:
        self._creations.discard(task)
        if self._inflight.get(key) is flight:
            del self._inflight[key]
        if flight.done():
            return
        if task.cancelled():
            if self._books.closed:  # aclose() cancelled it: the waiters learn why
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
        key: Key,
        factory: Callable[..., Any],
        settings: Any,
        loop: asyncio.AbstractEventLoop,
        close: Callable[[Any], Any] | None,
    ) -> Entry:
        start = _now()
        obj = factory(settings) if settings is not None else factory()
        if inspect.isawaitable(obj):
            obj = await obj
        try:
            return self._books.store(key, obj, start, settings, weakref.ref(loop), close)
        except RegistryClosed:
            # closed while the factory ran: what it made is ours to close, or it leaks
            try:
                await self._close_entry(Entry.orphan(key, obj, close))
            except Exception:
                logger.warning("closing %r made during aclose() raised", key[0], exc_info=True)
            raise

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
        with self._books.lock:
            lock = self._sync_locks.setdefault(key, threading.Lock())
        with lock:
            entry = self._books.entries.get(key)
            if entry is not None:
                if self._books.fresh(entry, max_age_s, max_idle_s) and self._alive_sync(
                    entry, alive
                ):
                    return cast(T, self._books.hit(entry))
                if self._books.drop(key, entry):
                    self._close_sync(entry)
            self._check_open(name)
            start = _now()
            obj = factory(settings) if settings is not None else factory()
            if inspect.isawaitable(obj):
                if inspect.iscoroutine(obj):
                    obj.close()
                raise TypeError(f"the factory for {name!r} is async; use 'await registry.get(...)'")
            try:
                entry = self._books.store(key, obj, start, settings, None, close)
            except RegistryClosed:
                self._close_sync(Entry.orphan(key, obj, close))
                raise
            return cast(T, entry.obj)

    def register(self, name: str, obj: Any, settings: Any = None) -> None:
        """Add a borrowed object under ``(name, settings)``. It is handed out, never closed."""
        self._check_open(name)
        if obj is None:
            raise TypeError(f"cannot register None as {name!r}")
        self._books.borrow((name, fingerprint(settings, "settings"), 0), obj, settings)

    # -- reuse checks -----------------------------------------------------------------------

    @staticmethod
    def _alive_sync(entry: Entry, alive: Callable[[Any], bool] | None) -> bool:
        if alive is None or not entry.owned:
            return True
        try:
            return bool(alive(entry.obj))
        except Exception:
            logger.warning("health check of %r raised; recreating it", entry.name, exc_info=True)
            return False

    async def _usable(
        self,
        key: Key,
        entry: Entry,
        alive: Alive | None,
        max_age_s: float | None,
        max_idle_s: float | None,
    ) -> bool:
        ok = self._books.fresh(entry, max_age_s, max_idle_s)
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
        if self._books.drop(key, entry):  # only the caller that removed it closes it
            await self._close_entry(entry)
        return False

    def _check_open(self, name: str) -> None:
        if self._books.closed:
            raise RegistryClosed(self.name, name)

    def _after_fork(self) -> None:
        """In a forked child: the parent's clients (sockets, threads) are not ours to use."""
        self._books.after_fork()
        self._inflight.clear()
        self._sync_locks.clear()

    # -- closing ----------------------------------------------------------------------------

    async def _close_entry(self, entry: Entry) -> None:
        if not entry.owned:
            return
        if entry.close is not None:
            result = entry.close(entry.obj)
            if inspect.isawaitable(result):
                await result
        else:
            await close_object(entry.obj)
        self._books.closed_one(entry)

    def _close_sync(self, entry: Entry) -> None:
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
        entries = self._books.take_all()
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
        self._books.closed = True
        loop = asyncio.get_running_loop()
        running = [t for t in self._creations if t.get_loop() is loop and not t.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        await self.clear()

    # -- looking ----------------------------------------------------------------------------

    def statistics(self) -> dict[str, ProviderStatistics]:
        """Per key (``name`` or ``name[fingerprint]``): creations, hits, creation seconds."""
        return self._books.statistics()

    def status(self) -> dict[str, Any]:
        """How many clients are cached, for which keys, how old, and how often reused."""
        return self._books.status()

    def __repr__(self) -> str:
        state = "closed" if self._books.closed else "open"
        return f"<Registry {self.name!r} {state} clients={len(self._books.entries)}>"


_default: Registry | None = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """The process-wide registry (made on first use; a forked child starts with it empty)."""
    global _default
    if _default is None or _default._books.closed:
        with _default_lock:
            if _default is None or _default._books.closed:
                _default = Registry("default")
    return _default
