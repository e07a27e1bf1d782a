"""``ss.offload`` / ``@ss.nonblocking``: run sync code off the event loop, within limits.

Three kinds of work:

- ``kind="thread"`` (the default): blocking I/O. Threads come from slipstream's bounded pool
  (``SLIPSTREAM_MAX_THREADS``, default 32; asyncio's default is ``min(32, cpus + 4)``, 6
  threads on 2 cores), with no bound of their own unless given a ``limit`` or ``lane``.
- ``kind="cpu"``: CPU-heavy Python that must run in this process (closures, unpicklable
  objects). Threads in the "cpu" lane, ``SLIPSTREAM_CPU_THREADS`` at once (default 1), at nice
  10. Each Python thread that computes takes the GIL from the loop for up to the switch
  interval (5 ms) every time the loop wakes, so the lag grows with the number of such threads:
  measured with 16 concurrent pure-Python jobs on 2 cores, loop lag p99 was 550 ms with 16
  threads, 46 ms with 2 and 9 ms with 1, at the same throughput (the GIL runs one at a time).
- ``kind="process"``: CPU-heavy work that pickles; the only way to use more than one core
  for pure Python, and the least loop lag (about 1 ms p99 in the same measurement). A process
  pool per nice value (``SLIPSTREAM_MAX_PROCESSES``, default the CPU count), workers at nice 10.

``limit=n`` bounds one function's calls (its lane is named after the function);
``lane="export"`` makes all calls in the lane share one bound. A call that finds its lane full
waits on the loop, not in a thread, and a slot is released when the call really ends.

Cancellation: cancelling the awaiting task cancels the await at once. A call still waiting for
a slot leaves the queue and takes nothing. A thread cannot be interrupted, so a running call
runs to its end in the background, its result dropped, and holds its slot until then (the work
still uses the CPU, so the bound keeps counting it); a process-pool call not yet started is
cancelled. Context variables are copied into threads, not into processes.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, Literal, ParamSpec, TypeVar, overload

from ..core.callables import kind_of
from ..core.checks import check_callable, check_choice, check_int
from ..core.threads import default_executor
from .lanes import CPU_LANE, Lane, lane_named
from .pools import process_pool, thread_pool

__all__ = ["nonblocking", "offload"]

P = ParamSpec("P")
T = TypeVar("T")
Kind = Literal["thread", "cpu", "process"]
_KINDS = ("thread", "cpu", "process")
_DEFAULT_NICE = {"thread": 0, "cpu": 10, "process": 10}


def _check(fn: object, *, generators: bool = True) -> None:
    check_callable("fn", fn)
    kind = kind_of(fn)
    if kind in ("async", "async_generator"):
        what = "a coroutine function" if kind == "async" else "an async generator function"
        raise TypeError(
            f"{getattr(fn, '__qualname__', fn)!r} is {what}: it already runs on the loop "
            "without blocking it\nHINT: await it (or iterate it) directly instead of "
            "offloading it"
        )
    if kind == "generator" and not generators:
        raise TypeError(
            f"{getattr(fn, '__qualname__', fn)!r} is a generator function: calling it in a "
            "thread only makes the generator, and its body would then run on the loop as it "
            "is iterated\nHINT: offload a function that returns a list, or iterate the "
            "generator inside the offloaded function"
        )


def _function_name(fn: object) -> str:
    target = fn
    while isinstance(target, functools.partial):
        target = target.func
    target = getattr(target, "__func__", target)  # a bound method: its function
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{name}" if module else name


def _options(
    kind: object, limit: object, lane: object, nice: object
) -> tuple[str, int | None, str | None, int | None]:
    """The options checked: each wrong one named in its error."""
    check_choice("kind", kind, _KINDS)
    bound = check_int("limit", limit, minimum=1, allow_none=True)
    if lane is not None and not isinstance(lane, str):
        raise TypeError(f"'lane' must be a str or None, got {type(lane).__name__} {lane!r}")
    if lane == "":
        raise ValueError("'lane' must be a non-empty name, got ''")
    level = check_int("nice", nice, minimum=0, maximum=19, allow_none=True)
    return str(kind), bound, lane, level


def _plan(
    fn: object, kind: str, bound: int | None, lane: str | None, level: int | None
) -> tuple[Lane | None, int]:
    """The call's lane (None: unbounded) and nice value, from checked options."""
    if lane is not None:
        name: str | None = lane
    elif bound is not None:
        name = _function_name(fn)
    elif kind == "cpu":
        name = CPU_LANE
    else:
        name = None
    chosen = None if name is None else lane_named(name, bound)
    return chosen, _DEFAULT_NICE[kind] if level is None else level


async def offload(
    fn: Callable[..., T],
    /,
    *args: Any,
    kind: Kind = "thread",
    limit: int | None = None,
    lane: str | None = None,
    nice: int | None = None,
    **kwargs: Any,
) -> T:
    """Run ``fn(*args, **kwargs)`` in a worker thread (default) or process and await it.

    (The options are keyword-only, so ``offload`` types its result but not ``fn``'s arguments:
    ``ParamSpec`` allows no keyword after ``*args``; ``@nonblocking`` keeps the full signature.
    To pass ``fn`` a keyword argument named like an option, wrap it in ``functools.partial``.)

    Args:
        fn: a sync function.
        kind: "thread" for blocking I/O, "cpu" for CPU-heavy Python that must stay in this
            process (the "cpu" lane), "process" for CPU-heavy work that pickles.
        limit: at most this many calls at once: of ``fn`` (a lane named after it), or of
            ``lane`` when one is named. A lane's limit is given once (the same value
            everywhere); until it is, a named lane admits 1 call at a time.
        lane: the name of a bound shared by every call that names it, across functions,
            loops and threads.
        nice: how much to lower the worker's CPU priority (0-19): default 0 for threads, 10
            for "cpu" and "process", so the API process keeps the CPU when cores are busy.
            Threads are niced on Linux only.

    Raises:
        TypeError: ``fn`` is a coroutine function (nothing to offload) or not callable;
            ``limit``, ``lane`` or ``nice`` has the wrong type.
        ValueError: an unknown ``kind``, ``limit`` < 1, ``nice`` outside 0-19, or a lane's
            limit given twice with different values.

    Example::

        archive = await ss.offload(build_zip, rows, lane="export", limit=2)
    """
    _check(fn)
    chosen, level = _plan(fn, *_options(kind, limit, lane, nice))
    return await _run(functools.partial(fn, *args, **kwargs), kind, chosen, level)


async def _run(call: Callable[[], T], kind: str, lane: Lane | None, nice: int) -> T:
    if lane is not None:
        await lane.acquire()  # no await between taking the slot and handing it to the worker
    if kind == "process":
        return await _in_process(call, nice, lane)
    return await _in_thread(call, nice, lane)


def _release_when_done(future: Future[Any], lane: Lane | None) -> None:
    if lane is not None:
        future.add_done_callback(lambda _: lane.release())


async def _in_thread(call: Callable[[], T], nice: int, lane: Lane | None) -> T:
    """Run in a thread; the lane's slot (already taken) goes back when the thread is done."""
    try:
        future = thread_pool(nice).submit(contextvars.copy_context().run, call)
    except BaseException:
        if lane is not None:
            lane.release()
        raise
    _release_when_done(future, lane)
    return await asyncio.wrap_future(future)


async def _in_process(call: Callable[[], T], nice: int, lane: Lane | None) -> T:
    """Run in the process pool; the lane's slot goes back when the worker's result is in.

    Submitting may start worker processes (a forkserver handshake: ~50 ms measured on the
    loop here), so submit from a thread; the await itself is a plain future.
    """
    pool = process_pool(nice)

    def submit() -> Future[T]:
        job = pool.submit(call)
        _release_when_done(job, lane)
        return job

    def unsubmitted(hop: Future[Future[T]]) -> None:
        if lane is not None and (hop.cancelled() or hop.exception() is not None):
            lane.release()  # the job never reached the pool: nothing else will release

    try:
        hop = default_executor().submit(submit)
    except BaseException:
        if lane is not None:
            lane.release()
        raise
    hop.add_done_callback(unsubmitted)
    job = await asyncio.wrap_future(hop)
    return await asyncio.wrap_future(job)


@overload
def nonblocking(fn: Callable[P, T], /) -> Callable[P, Awaitable[T]]: ...
@overload
def nonblocking(
    fn: None = None,
    /,
    *,
    kind: Literal["thread", "cpu"] = ...,
    limit: int | None = ...,
    lane: str | None = ...,
    nice: int | None = ...,
) -> Callable[[Callable[P, T]], Callable[P, Awaitable[T]]]: ...
def nonblocking(
    fn: Callable[P, T] | None = None,
    /,
    *,
    kind: Literal["thread", "cpu"] = "thread",
    limit: int | None = None,
    lane: str | None = None,
    nice: int | None = None,
) -> Callable[P, Awaitable[T]] | Callable[[Callable[P, T]], Callable[P, Awaitable[T]]]:
    """Make a sync function awaitable off the loop: ``await slow_read(...)`` runs in a thread.

    Bare (``@ss.nonblocking``) the calls share the thread pool unbounded; with options
    (``@ss.nonblocking(limit=2)``, ``lane=``, ``kind="cpu"``, ``nice=``) they mean what they
    mean for ``ss.offload``, checked when decorating. ``kind="process"`` is not offered: the
    decorated name is the wrapper, so the function could not be pickled to a worker.

    Raises:
        TypeError: the function is a coroutine, async generator or generator function, or an
            option has the wrong type.
        ValueError: as for ``ss.offload``; ``kind="process"``.

    Example::

        @ss.nonblocking(lane="export", limit=2)
        def build_zip(rows: list[Row]) -> bytes: ...
    """
    if kind == "process":  # type: ignore[comparison-overlap]  # untyped callers
        raise ValueError(
            "'kind' of @nonblocking must be 'thread' or 'cpu', got 'process'\nHINT: call "
            "await ss.offload(fn, ..., kind='process') on the undecorated function"
        )
    options = _options(kind, limit, lane, nice)

    def decorate(f: Callable[P, T]) -> Callable[P, Awaitable[T]]:
        _check(f, generators=False)
        chosen, level = _plan(f, *options)

        @functools.wraps(f)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return await _run(functools.partial(f, *args, **kwargs), kind, chosen, level)

        return wrapper

    if fn is None:
        return decorate
    return decorate(fn)
