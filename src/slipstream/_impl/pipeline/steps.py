"""How items go through one stage: a local ``ss.stream``, or batches sent by a stage's runner.

Each stage is an async generator over the one before it, so stages overlap through the
streams' bounded buffers. What a stage passes on is an ``_Env``: the item's identity and its
new value; what it does not (a ``Skip``, a failure) is handed to ``record`` with the stage's
name. Every call is timed on the clock seam (``core.clock.now``, resolved once per stage to
the running loop's ``time``), so a virtual-clock test measures exact latencies.

A local stage with a query scope (``StageState.watch``) counts the statements its calls send:
each call sets the detect scope (``CURRENT``) to the stage's for its duration (one context
variable set and reset, about 0.1 us, and skipped while nothing was ever instrumented), so
helpers, threads (``offload`` copies the context) and tasks the call starts count toward the
stage, and the source's reads, which run in a stage's worker between calls, do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import PipelineError, Skip
from ..core.outcome import Outcome
from ..detect import scope as _scope
from ..detect.scope import CURRENT, Watch
from ..flow.map import stream_chunks
from ..flow.options import resolve_limiter
from ..flow.rate import Limiter, Rate
from ..loop.offload import offload
from ..observe.histogram import Histogram
from ..observe.monitor import Monitor
from .ledger import Mark
from .report import StageReport
from .stage import Item, Stage, _current, _is_async, _maybe_await, _NotSkip, _Shared

__all__ = ["Env", "Record", "StageState", "flow_through", "set_up", "stage_states"]

# how stale ss.monitor's view of a running plain stage may get (wall clock: a statistic, not
# the run's logic, so the virtual clock of tests does not apply)
_MERGE_EVERY_S = 1.0

# Where an item a stage did not pass on goes: ``record(status, key, stage name, error)``.
Record = Callable[[Mark, str, str, BaseException], Awaitable[None]]


@dataclass(slots=True)
class Env:
    """An item on its way through the stages: its identity and its current value."""

    item: Item
    value: Any

    @property
    def key(self) -> str:
        return self.item.key


@dataclass(slots=True)
class StageState:
    """One stage in one run: its setup's result, its call latencies and its counts."""

    stage: Stage
    context: Any = None
    has_context: bool = False
    hist: Histogram = field(default_factory=Histogram)
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    retries: int = 0
    watch: Watch | None = None  # the stage's query scope (None: not measured)

    def report(self) -> StageReport:
        h = self.hist
        if h.count:
            summary = h.summary()
            mean, p50, p95 = summary.mean, summary.p50, summary.p95
        else:
            mean = p50 = p95 = 0.0
        seen = self.watch.snapshot() if self.watch is not None and _scope.INSTRUMENTED else None
        items = self.ok + self.failed + self.skipped
        return StageReport(
            name=self.stage.name,
            ok=self.ok,
            failed=self.failed,
            skipped=self.skipped,
            calls=h.count,
            retries=self.retries,
            mean_s=mean,
            p50_s=p50,
            p95_s=p95,
            queries=seen.queries if seen is not None else 0,
            queries_per_item=seen.queries / items if seen is not None and items else None,
            db_s=seen.db_s if seen is not None else 0.0,
            findings=seen.findings if seen is not None else (),
        )

    async def settle(self, env: Env, error: BaseException, record: Record) -> None:
        """Count and record an item this stage did not pass on: skipped or failed."""
        if isinstance(error, Skip):
            self.skipped += 1
            await record("skipped", env.key, self.stage.name, error)
        else:
            self.failed += 1
            await record("failed", env.key, self.stage.name, error)


async def set_up(
    states: Sequence[StageState], sink_setup: Callable[[], Awaitable[Any]] | None = None
) -> None:
    """Run every local stage's setup, and the sink's (``sink_setup``), concurrently (a storage
    handshake need not wait for an LLM client or the DDL); the first failure cancels the others
    and is raised as ``PipelineError``. A runner's stage sets up on its workers instead."""

    async def one(st: StageState) -> None:
        assert st.stage.setup is not None
        try:
            st.context = await _maybe_await(st.stage.setup())
        except Exception as exc:
            raise PipelineError(
                f"setup of stage {st.stage.name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        st.has_context = True

    async def sink() -> None:
        assert sink_setup is not None
        try:
            await sink_setup()
        except Exception as exc:
            raise PipelineError(
                f"setup of the sink failed: {type(exc).__name__}: {exc}"
                "\nHINT: no item was taken; fix the sink (its database, its DDL) and run again"
            ) from exc

    try:
        async with asyncio.TaskGroup() as tg:
            for st in states:
                if st.stage.setup is not None and st.stage.runner is None:
                    tg.create_task(one(st))
            if sink_setup is not None:
                tg.create_task(sink())
    except ExceptionGroup as group:
        first = group.exceptions[0]
        raise first from first.__cause__


async def flow_through(
    st: StageState,
    upstream: AsyncGenerator[list[Env], None],
    *,
    metric: str,
    monitor: Monitor,
    record: Record,
) -> AsyncGenerator[list[Env], None]:
    """``upstream``'s items through stage ``st``: what it passes on is yielded, the rest go to
    ``record``. Items travel in lists: what the stage has finished since the consumer last
    asked goes on in one step (one item at a time when calls finish one at a time), at most
    as many as the consumer sends it (``asend``: the next stage's free room). Call latencies
    go to ``st.hist`` and to ``monitor`` as ``metric``."""
    stage = st.stage
    retry = stage.retry
    if retry is not None:
        retry = dataclasses.replace(retry, on=_NotSkip(retry._match))
    calls: _Calls | None = None
    try:
        if stage.runner is not None:
            remote = dataclasses.replace(stage, retry=retry)
            batches = stage.runner.run_stage(remote, _flatten(upstream), _remote_payload)
            async with contextlib.aclosing(batches) as results:
                async for env, ok, value, attempts, elapsed in results:
                    st.hist.add(elapsed)
                    monitor.record(metric, elapsed, not ok)
                    st.retries += max(0, attempts - 1)
                    if ok:
                        st.ok += 1
                        yield [Env(env.item, value)]
                    else:
                        await st.settle(env, value, record)
            return
        # a plain stage (no rate, retry, breaker, timeout or cache): the engine times each
        # call (the outcome's elapsed_s is the call's), and the stage records them per batch
        plain = (
            stage.cache is None
            and stage.rate is None
            and retry is None
            and stage.breaker is None
            and not stage.timeout_s
        )
        calls = _Calls(st, metric, monitor) if plain else None
        async with stream_chunks(
            _call(st, metric, monitor, timed=not plain),
            upstream,
            concurrency=stage.concurrency,
            # a cached stage takes its rate inside the load, so a hit waits for no token
            rate=stage.rate if stage.cache is None else None,
            retry=retry,
            breaker=stage.breaker,
            timeout_s=stage.timeout_s,
            buffer=stage.buffer,
        ) as outcomes:
            # an empty list first, so the next stage can send what it may take (a
            # just-started generator takes no value); None: it sends nothing, take all
            want: int | None = yield []
            while True:
                try:
                    batch = await outcomes.next_batch(want)
                except StopAsyncIteration:
                    return
                out = []
                seconds = []
                for outcome in batch:
                    env = outcome.item
                    seconds.append(outcome.elapsed_s)
                    if outcome.error is None:
                        env.value = outcome._value  # in place: nothing else holds it now
                        out.append(env)
                    else:
                        await st.settle(env, outcome.error, record)
                    if outcome.attempts > 1:
                        st.retries += outcome.attempts - 1
                if calls is not None:
                    calls.add(seconds, batch, len(batch) - len(out))
                st.ok += len(out)
                if out:
                    want = yield out
    finally:
        if calls is not None:
            calls.flush()
        # the stream (or the runner) has stopped pulling: close what feeds it, so nothing
        # upstream keeps working (or holding a connection) for a stage that is gone
        await upstream.aclose()


class _Calls:
    """A plain stage's call latencies, recorded per batch: each call is bucketed once, in a
    pending histogram merged into the stage's and the monitor's at most a second later (and
    when the stage ends). When the monitor wants each one (a hook, a slow threshold), each
    goes to it as it comes."""

    __slots__ = ("errors", "flushed", "metric", "monitor", "pending", "st")

    def __init__(self, st: StageState, metric: str, monitor: Monitor) -> None:
        self.st, self.metric, self.monitor = st, metric, monitor
        self.pending = Histogram()
        self.errors = 0
        self.flushed = time.monotonic()

    def add(self, seconds: list[float], batch: list[Outcome[Env, Any]], errors: int) -> None:
        """The calls of one batch: ``seconds`` each, ``errors`` of them failed."""
        if self.monitor.wants_each(self.metric):
            self.st.hist.add_many(seconds)
            flags = [o.error is not None for o in batch]
            self.monitor.record_many(self.metric, seconds, flags)
            return
        self.pending.add_many(seconds)
        self.errors += errors
        if time.monotonic() - self.flushed >= _MERGE_EVERY_S:
            self.flush()

    def flush(self) -> None:
        pending = self.pending
        if pending.count:
            self.st.hist.merge(pending)
            self.monitor.merge(self.metric, pending, self.errors)
            self.pending = Histogram()
            self.errors = 0
        self.flushed = time.monotonic()


async def _flatten(chunks: AsyncGenerator[list[Env], None]) -> AsyncGenerator[Env, None]:
    """One item at a time, for a runner's stage (it batches on its own terms)."""
    async for chunk in chunks:
        for env in chunk:
            yield env


def _call(
    st: StageState, metric: str, monitor: Monitor, *, timed: bool = True
) -> Callable[[Env], Awaitable[Any]]:
    """The function the stage's stream calls per item: the stage's function, timed (unless
    the caller times it: ``timed=False``), with the item's identity in ``current_item()`` (or,
    in a cached stage, the shared marker)."""
    stage = st.stage
    fn = stage.fn
    is_async = _is_async(fn)
    # the clock seam resolved once: inside the run's loop ``now()`` is that loop's ``time``, so
    # binding it here reads the same clock (virtual in tests) for 0.5-0.8 us less an item a
    # stage than calling ``now()`` twice per call (about 10% of a one-stage pipeline)
    clock = asyncio.get_running_loop().time

    async def untimed(value: Any) -> Any:
        args = (value, st.context) if st.has_context else (value,)
        if is_async:
            return await fn(*args)
        # offload copies this context into the thread: current_item() works there too
        return await _maybe_await(await offload(fn, *args))

    async def invoke(value: Any) -> Any:
        t0 = clock()
        error = False
        try:
            return await untimed(value)
        except BaseException:
            error = True
            raise
        finally:
            elapsed = clock() - t0
            st.hist.add(elapsed)
            monitor.record(metric, elapsed, error)

    watch = st.watch
    if stage.cache is None:
        run = invoke if timed else untimed
        if not timed and is_async:
            # the common case, one frame less: the stage's async function called directly

            async def direct(env: Env) -> Any:
                token = _current.set(env.item)
                scoped = CURRENT.set(watch) if watch is not None and _scope.INSTRUMENTED else None
                try:
                    if st.has_context:
                        return await fn(env.value, st.context)
                    return await fn(env.value)
                finally:
                    if scoped is not None:
                        CURRENT.reset(scoped)
                    _current.reset(token)

            return direct

        async def call(env: Env) -> Any:
            token = _current.set(env.item)
            # the stage's query scope for this call (and what it starts); while nothing was
            # ever instrumented no hook can record, so no scope is set
            scoped = CURRENT.set(watch) if watch is not None and _scope.INSTRUMENTED else None
            try:
                return await run(env.value)
            finally:
                if scoped is not None:
                    CURRENT.reset(scoped)
                _current.reset(token)

        return call
    cache, cache_key, shared = stage.cache, stage.cache_key, _Shared(stage.name)
    load = _rated(invoke, stage.rate)

    async def cached_call(env: Env) -> Any:
        k = cache_key(env.value) if cache_key is not None else env.value
        # the load runs in a task that copies this context: the marker, not this item,
        # is what the shared computation sees (and the stage's query scope, as in call)
        token = _current.set(shared)
        scoped = CURRENT.set(watch) if watch is not None and _scope.INSTRUMENTED else None
        try:
            return await cache.get_or_load(k, lambda: load(env.value))
        finally:
            if scoped is not None:
                CURRENT.reset(scoped)
            _current.reset(token)

    return cached_call


def _rated(
    invoke: Callable[[Any], Awaitable[Any]], rate: Rate | Limiter | None
) -> Callable[[Any], Awaitable[Any]]:
    """``invoke`` behind the stage's rate, for a cached stage: only a miss's call takes a token,
    and a limiter that learns (``AdaptiveRate``) hears how each call went, as in ``ss.map``."""
    limiter, feedback = resolve_limiter(rate)
    if limiter is None:
        return invoke

    async def load(value: Any) -> Any:
        await limiter.acquire(1.0)
        try:
            result = await invoke(value)
        except Exception as exc:
            if feedback is not None:
                feedback(exc)
            raise
        if feedback is not None:
            feedback(None)
        return result

    return load


def stage_states(
    stages: Sequence[Stage], gates: Watch | None
) -> tuple[Watch | None, list[StageState]]:
    """One run's stage states and its query scope: with ``gates`` (``Pipeline(detect=...)``),
    a scope for the run with its gates and ``record_to``, and one inside it per local stage (a
    runner's stage runs elsewhere: its statements are not seen here)."""
    if gates is None:
        return None, [StageState(s) for s in stages]
    run = Watch(
        min_repeats=gates.min_repeats,
        min_total_s=gates.min_total_s,
        slow_s=math.inf,  # slow statements are not kept: a long run would keep them all
        record_to=gates.record_to,
    )
    return run, [
        StageState(s, watch=run.inner(_site_of(s.fn)) if s.runner is None else None) for s in stages
    ]


def _site_of(fn: Any) -> tuple[str, int, str]:
    """Where ``fn`` is defined (file, first line, qualified name): the call site a stage's
    scope gives the statements whose driver names none (asyncpg)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    code = getattr(fn, "__code__", None)
    if code is None:  # an object with a __call__ method
        code = getattr(getattr(type(fn), "__call__", None), "__code__", None)  # noqa: B004
    if code is None:
        return ("<unknown>", 0, getattr(fn, "__qualname__", type(fn).__qualname__))
    return (code.co_filename, code.co_firstlineno, code.co_qualname)


def _remote_payload(env: Env) -> tuple[Item, Any]:
    """What a runner's stage sends per item: the identity travels with the value."""
    return (env.item, env.value)
