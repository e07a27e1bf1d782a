"""``ss.Stage`` and an item's identity: what one step of a pipeline is and what it may see.

A stage is a function with its flow control (concurrency, rate, retry, breaker, timeout, cache,
a ``setup`` run once). Every item carries an identity, ``ss.Item(key, source)``, beside its
value; ``ss.current_item()`` reads it inside a stage call (a context variable set by the
engine), except in a cached stage, whose output is shared by every item with the same cache key.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import KW_ONLY, dataclass
from typing import Any, final

from ..cache.cache import Cache
from ..core.checks import check_callable, check_int, check_seconds
from ..core.errors import Skip
from ..flow.breaker import CircuitBreaker
from ..flow.rate import Limiter, Rate
from ..flow.retry import Retry

__all__ = ["Item", "Stage", "current_item"]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """An item's identity on its way through a pipeline: ``key`` (what the checkpoint and the
    sink's upsert use) and ``source``, the item as the source gave it. The engine carries it
    beside the value, so values need not carry ids from stage to stage."""

    key: str
    source: Any


class _Shared:
    """The marker ``current_item`` finds inside a cached stage: the output being computed is
    shared by every item with the same cache key, so no one item's identity belongs in it."""

    __slots__ = ("stage",)

    def __init__(self, stage: str) -> None:
        self.stage = stage


# the slots' descriptors (mypy sees the fields, not the descriptors: read them from the dict)
_set_key = vars(Item)["key"].__set__
_set_source = vars(Item)["source"].__set__


def new_item(key: str, source: Any) -> Item:
    """``Item(key=key, source=source)`` for the engine's per-item path: the frozen dataclass's
    ``__init__`` sets each field through ``object.__setattr__`` (356 ns an item); the slots'
    own setters do it in 137 ns. Same object, same immutability for everyone else."""
    item = object.__new__(Item)
    _set_key(item, key)
    _set_source(item, source)
    return item


_current: ContextVar[Item | _Shared | None] = ContextVar("slipstream_item", default=None)


def current_item() -> Item:
    """The identity (``ss.Item(key, source)``) of the item the running stage call processes.

    Set around every call of a stage's function: async ones, sync ones (run in a thread with
    the caller's context) and Dask stages (the identity travels with the value).

    Raises:
        RuntimeError: outside a stage call; or in a stage that has a ``cache``: its output is
            shared by every item with the same cache key and must not depend on one item's
            identity (the first item's id would be written for all of them).
    """
    found = _current.get()
    if isinstance(found, Item):
        return found
    if isinstance(found, _Shared):
        raise RuntimeError(
            f"current_item() in stage {found.stage!r}, which has a cache: its output is shared "
            "by every item with the same cache key, so it cannot depend on one item's identity"
            "\nHINT: build the sink's row from the identity with "
            "Pipeline(row=lambda item, value: ...), or read it in a stage without a cache"
        )
    raise RuntimeError(
        "current_item() is called outside a pipeline stage call"
        "\nHINT: call it from a Stage's function while Pipeline.run() runs it"
    )


@final
@dataclass(slots=True)
class Stage:
    """One step of a pipeline.

    Args:
        fn: ``fn(value)`` or, with ``setup``, ``fn(value, context)``; async or sync (sync runs
            in the thread pool). Its return value is the next stage's input (or, through
            ``Pipeline(row=...)``, the sink's row). ``ss.current_item()`` in the call is the
            item's identity (key and source item). Raise ``ss.Skip(reason)`` to record the item
            as skipped.
        name: for reports and metrics (default: the function's name).
        concurrency: calls in flight at once.
        rate: a ``Rate`` or a shared limiter for the calls of this stage (with a ``cache``, only
            the calls a miss makes take a token; an item answered from the cache waits for none).
        retry: the retry policy (``ss.Skip`` is never retried).
        breaker: a circuit breaker around the calls.
        timeout_s: per-call timeout.
        cache: a ``Cache``; calls whose ``cache_key(value)`` was seen are not repeated (single
            flight, so concurrent items with the same key make one call), and every item with
            that key gets the same output. So ``cache_key`` must capture everything the
            function's output depends on, and the output must not carry an item's identity:
            ``ss.current_item()`` raises in a cached stage; give the sink the identity with
            ``Pipeline(row=lambda item, value: ...)``.
        cache_key: the cache key of an input value (default: the value itself).
        setup: run once per run before any item (sync or async); its result is ``context``.
        latency_s: the expected seconds per call, for ``Pipeline.plan`` before any run.
        buffer: how far the stage runs ahead of the next one: it holds at most
            ``concurrency + buffer`` items (in flight or finished) that the next stage has not
            taken yet (default ``concurrency``, so ``2 * concurrency`` items in all).
        runner: an ``ss.DaskRunner`` to run this stage on Dask workers in batches (its
            ``fn`` and ``setup`` must then be importable module-level functions; ``setup``
            runs once per worker process, ``concurrency`` is the runner's per worker; the
            item's identity travels with its value, so the source item must be picklable).
    """

    fn: Callable[..., Any]
    _: KW_ONLY  # everything after the function is named: Stage(fetch, concurrency=8)
    name: str = ""
    concurrency: int = 8
    rate: Rate | Limiter | None = None
    retry: Retry | None = None
    breaker: CircuitBreaker | None = None
    timeout_s: float | None = None
    cache: Cache | None = None
    cache_key: Callable[[Any], Any] | None = None
    setup: Callable[[], Any] | None = None
    latency_s: float | None = None
    buffer: int | None = None
    runner: Any = None

    def __post_init__(self) -> None:
        check_callable("fn", self.fn)
        if not isinstance(self.name, str):
            raise TypeError(f"'name' must be a str, got {type(self.name).__name__}")
        if not self.name:
            self.name = getattr(self.fn, "__name__", "stage")
        self.concurrency = check_int("concurrency", self.concurrency, minimum=1)
        self.timeout_s = check_seconds("timeout_s", self.timeout_s, allow_none=True, allow_inf=True)
        self.latency_s = check_seconds("latency_s", self.latency_s, allow_none=True)
        self.buffer = check_int("buffer", self.buffer, minimum=0, allow_none=True)
        check_callable("setup", self.setup, allow_none=True)
        check_callable("cache_key", self.cache_key, allow_none=True)
        if self.cache is not None and not isinstance(self.cache, Cache):
            raise TypeError(f"'cache' must be an ss.Cache, got {type(self.cache).__name__}")
        if self.runner is not None:
            if not hasattr(self.runner, "run_stage"):
                raise TypeError(
                    f"'runner' must be an ss.DaskRunner, got {type(self.runner).__name__}"
                )
            if self.cache is not None:
                raise ValueError("'cache' runs in this process; it cannot go with a 'runner'")


class _NotSkip:
    """A retry predicate that never retries ``ss.Skip`` (picklable, for remote stages)."""

    __slots__ = ("match",)

    def __init__(self, match: Callable[[BaseException], bool]) -> None:
        self.match = match

    def __call__(self, exc: BaseException) -> bool:
        return not isinstance(exc, Skip) and self.match(exc)


def _rate_per_s(rate: Rate | Limiter | None) -> float | None:
    if rate is None:
        return None
    per_s = getattr(rate, "per_second", None)
    if per_s is None:
        inner = getattr(rate, "rate", None)
        per_s = getattr(inner, "per_second", None)
    return float(per_s) if per_s else None


def _rate_burst(rate: Rate | Limiter | None) -> float:
    burst = getattr(rate, "burst", None)
    if burst is None:
        burst = getattr(getattr(rate, "rate", None), "burst", None)
    try:
        return float(burst) if burst is not None else 1.0
    except (TypeError, ValueError):
        return 1.0


def _is_async(fn: Any) -> bool:
    """True for an ``async def`` function or an object whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004  # an object with an async __call__
    )


async def _maybe_await(value: Any) -> Any:
    """``value``, awaited first if it is awaitable (what a sync-or-async callable returned)."""
    return await value if inspect.isawaitable(value) else value
