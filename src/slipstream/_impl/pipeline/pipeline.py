"""``ss.Pipeline``: a source, stages and a sink, streaming, resumable, nothing lost.

Seed 000 annotated every asset x every schema in nested sequential loops; seed 002 wanted its
PDF -> LLM -> database stages to overlap; seed 004 committed every 100 genes and needed to pause
and resume from a checkpoint. A pipeline composes the primitives that fixed each:

- every stage is an ``ss.stream`` with its own concurrency, rate, retry, breaker, timeout and
  cache; stages are chained through bounded buffers, so stage 2 works while stage 1 produces
  and memory stays bounded whatever the source's length;
- a stage's ``setup`` runs once per run, before any item (clients from the registry, schemas
  compiled), and its result is passed to every call: invariant work is hoisted out of the loop;
- the sink is a ``BatchWriter``: rows are committed in batches, bad rows isolated;
- with a ``Checkpoint`` an item is marked done only after the sink committed it, failures are
  recorded with their error (its notes and causes too) and raw detail, and a resumed run skips
  what is done;
- every item has an identity, ``ss.Item(key, source)``, that the engine carries beside the
  value: a stage reads it with ``ss.current_item()``, the sink's row builder
  (``Pipeline(row=...)``) receives it, so no value has to carry ids through the stages, and a
  cached output, shared by every item with its cache key, never carries another item's id.

Example::

    pipeline = ss.Pipeline(
        source=assets,
        stages=[ss.Stage(fetch, concurrency=8), ss.Stage(classify, concurrency=32, rate=rate)],
        sink=ss.sqlite_flush("results.sqlite", "labels", ["key", "label"], conflict=["key"]),
        key=lambda asset: asset.id,
        row=lambda item, label: (item.key, label),
        checkpoint=ss.Checkpoint("run.ckpt"),
        run_id="2026-11-23",
    )
    report = await pipeline.run(progress=True)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import logging
import math
import signal
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..clients.registry import Registry, default_registry
from ..core.checks import check_callable, check_int, check_seconds
from ..core.errors import CheckpointError, FlushFailed, InputError, PipelineError, Skip
from ..db.writer import BatchWriter, takes_batch_id
from ..flow.map import stream
from ..loop.offload import offload
from ..observe.histogram import Histogram
from ..observe.monitor import Monitor
from ..observe.monitor import monitor as default_monitor
from .checkpoint import (
    Checkpoint,
    FailedItem,
    RunState,
    RunStatus,
    describe_error,
    error_detail,
)
from .report import PipelineProgress, Plan, RunReport, StagePlan, StageReport
from .stage import Item, Stage, _current, _NotSkip, _rate_burst, _rate_per_s, _Shared

__all__ = ["Pipeline"]

T = TypeVar("T")
logger = logging.getLogger("slipstream.pipeline")


@dataclass(slots=True)
class _Env:
    """An item on its way through the stages: its identity and its current value."""

    item: Item
    value: Any

    @property
    def key(self) -> str:
        return self.item.key


@dataclass(slots=True)
class _StageState:
    stage: Stage
    context: Any = None
    has_context: bool = False
    hist: Histogram = field(default_factory=Histogram)
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    retries: int = 0


def _default_key(item: Any) -> str:
    key = getattr(item, "key", None)
    if isinstance(key, str):
        return key
    if isinstance(item, str | int) and not isinstance(item, bool):
        return str(item)
    raise TypeError(
        f"cannot derive a key from a {type(item).__name__} item: pass key=lambda item: ... "
        "(a stable string per item; the checkpoint and the sink's upsert use it)"
    )


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class Pipeline(Generic[T]):
    """A source, stages and a sink: streaming, resumable, nothing lost.

    Each stage is an ``ss.stream`` with its own concurrency, rate, retry, breaker, timeout and
    cache, chained to the next through a bounded buffer (stage 2 works while stage 1 produces;
    memory stays bounded). A stage's ``setup`` runs once per run. The sink is a
    ``BatchWriter``: rows are committed in batches and bad rows isolated. With a
    ``Checkpoint``, an item is marked done only after the sink committed it, failures keep
    their error, and a resumed run skips what is done. Every item carries an identity
    (``ss.Item(key, source)``, read with ``ss.current_item()`` or in ``row=``), so values never
    carry ids through the stages.

    Args:
        source: an iterable or async iterable of items, or a zero-argument callable returning
            one (called at each run, so a pipeline can run again); ``ss.query_source`` and
            ``ss.DirectorySource`` are sources too. Objects with a ``round_trips`` attribute
            report it.
        stages: the stages, in order.
        sink: ``flush(rows)`` writing a batch in one transaction (async, or sync run in a
            thread), e.g. ``ss.sqlite_flush``, ``ss.asyncpg_flush``; it should upsert by item
            key so a resumed run cannot duplicate. A sink that takes a ``batch_id`` keyword
            gets the writer's (the same on every retry of a batch: the built-in flushes then
            write each batch once). None: an item is done after the last stage.
        key: ``key(item) -> str``, stable across runs (default: ``item.key``, or the item if
            it is a str or int).
        row: ``row(item, value) -> row``: the sink's row from the item's identity
            (``ss.Item``: ``key`` and ``source``) and the last stage's value, so ids need not
            travel through the stages' values (default: the value itself). Sync or async; an
            error fails that item at stage ``"row"``.
        checkpoint: an ``ss.Checkpoint`` (or a path or URL for one); None keeps no state.
        run_id: the run's name in the checkpoint; resuming means running the same run_id.
        batch_size, max_wait_s: the sink's batching (rows per flush, longest wait).
        registry: where stage setups get clients (its creations are reported).
        monitor: per-stage call latencies are recorded as ``"{name}.{stage}"``.
        name: the pipeline's name (metrics, progress bar).
    """

    def __init__(
        self,
        source: Iterable[T] | AsyncIterable[T] | Callable[[], Iterable[T] | AsyncIterable[T]],
        stages: Sequence[Stage],
        sink: Callable[..., Any] | None = None,
        *,
        key: Callable[[T], Any] | None = None,
        row: Callable[[Item, Any], Any] | None = None,
        checkpoint: Checkpoint | str | None = None,
        run_id: str = "default",
        batch_size: int = 100,
        max_wait_s: float = 0.5,
        registry: Registry | None = None,
        monitor: Monitor | None = None,
        name: str = "pipeline",
    ) -> None:
        if isinstance(stages, Stage | str) or not isinstance(stages, Iterable):
            raise TypeError(f"'stages' must be a sequence of ss.Stage, got {stages!r}")
        stages = list(stages)
        if not all(isinstance(s, Stage) for s in stages):
            raise TypeError("'stages' must be a sequence of ss.Stage")
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"'stages' must have distinct names, got {names}")
        if sink is not None and not callable(sink):
            raise TypeError(f"'sink' must be a flush function or None, got {type(sink).__name__}")
        check_callable("key", key, allow_none=True)
        check_callable(
            "row", row, allow_none=True, hint="row=lambda item, value: (item.key, value)"
        )
        if not isinstance(run_id, str) or not run_id:
            raise ValueError(f"'run_id' must be a non-empty string, got {run_id!r}")
        batch_size = check_int("batch_size", batch_size, minimum=1)
        max_wait_s = check_seconds("max_wait_s", max_wait_s)
        if not isinstance(name, str) or not name:
            raise ValueError(f"'name' must be a non-empty string, got {name!r}")
        if isinstance(checkpoint, str):
            checkpoint = Checkpoint(checkpoint)
        if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
            raise TypeError(
                f"'checkpoint' must be an ss.Checkpoint, a path or a URL, got "
                f"{type(checkpoint).__name__}"
            )
        self.source = source
        self.stages = stages
        self.sink = sink
        self.key = key or _default_key
        self.row = row
        self.checkpoint = checkpoint
        self.run_id = run_id
        self.batch_size = batch_size
        self.max_wait_s = max_wait_s
        self.registry = registry or default_registry()
        self.monitor = monitor or default_monitor
        self.name = name
        self._active: _Run | None = None  # the run in progress, if any
        self._measured: dict[str, float] = {}  # stage -> mean seconds per call, last run

    def __repr__(self) -> str:
        stages = " -> ".join(s.name for s in self.stages)
        return f"Pipeline({self.name!r}: source -> {stages} -> sink, run_id={self.run_id!r})"

    # -- control -----------------------------------------------------------------------------

    def pause(self) -> None:
        """Stop taking new items; the items in flight finish and are committed, then ``run``
        returns with ``state="paused"``. Safe to call from a signal handler. It pauses the run
        in progress; with none, it does nothing (a later run is not paused by it)."""
        run = self._active
        if run is not None:
            run.paused = True

    # -- planning ----------------------------------------------------------------------------

    def plan(self, n_items: int, *, latency_s: dict[str, float] | None = None) -> Plan:
        """Estimate the makespan of ``n_items`` from each stage's latency, concurrency and rate.

        A stage's latency is ``latency_s[name]``, else what the last run measured, else the
        stage's ``latency_s``. Each stage sustains ``min(concurrency / latency, rate)`` items a
        second; the slowest sets the pace, and the others add one latency each to fill the
        pipe. The advice names the concurrency that lets each stage keep up with the
        bottleneck (or saturate its rate limit).
        """
        if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 0:
            raise ValueError(f"'n_items' must be an int >= 0, got {n_items!r}")
        given = latency_s or {}
        plans: list[StagePlan] = []
        for s in self.stages:
            lat = given.get(s.name) or self._measured.get(s.name) or s.latency_s
            if lat is None:
                raise ValueError(
                    f"stage {s.name!r} has no latency: pass Stage(latency_s=...), "
                    "plan(latency_s={...}), or run the pipeline once"
                )
            per_s = _rate_per_s(s.rate)
            throughput = s.concurrency / lat if per_s is None else min(s.concurrency / lat, per_s)
            plans.append(
                StagePlan(
                    name=s.name,
                    latency_s=lat,
                    concurrency=s.concurrency,
                    rate_per_s=per_s,
                    throughput_per_s=throughput,
                    busy_s=0.0,
                    suggested_concurrency=0,
                )
            )
        if not plans:
            return Plan(n_items=n_items, makespan_s=0.0, bottleneck="", stages=(), advice=())
        slowest = min(plans, key=lambda p: p.throughput_per_s)
        pace = slowest.throughput_per_s
        makespan = n_items / pace + sum(p.latency_s for p in plans) if n_items else 0.0
        rated = [p.rate_per_s for p in plans if p.rate_per_s is not None]
        target = min(rated) if rated else pace
        advice: list[str] = []
        final: list[StagePlan] = []
        for p in plans:
            suggested = max(1, math.ceil(target * p.latency_s * 1.1))
            if p.rate_per_s is not None and p.rate_per_s <= target:
                suggested = max(1, math.ceil(p.rate_per_s * p.latency_s * 1.1))
            if suggested > p.concurrency and p.throughput_per_s < target * 0.999:
                advice.append(
                    f"raise {p.name!r} concurrency from {p.concurrency} to {suggested}: it "
                    f"sustains {p.throughput_per_s:.1f}/s, the pipeline could do {target:.1f}/s"
                )
            final.append(
                dataclasses.replace(
                    p, busy_s=n_items / p.throughput_per_s, suggested_concurrency=suggested
                )
            )
        if slowest.rate_per_s is not None and slowest.throughput_per_s >= slowest.rate_per_s:
            advice.append(
                f"{slowest.name!r} is held by its rate limit ({slowest.rate_per_s:g}/s); more "
                "concurrency will not help, a higher quota would"
            )
        return Plan(
            n_items=n_items,
            makespan_s=makespan,
            bottleneck=slowest.name,
            stages=tuple(final),
            advice=tuple(advice),
        )

    # -- running -----------------------------------------------------------------------------

    async def run(
        self,
        *,
        progress: bool = False,
        on_progress: Callable[[PipelineProgress], Any] | None = None,
        retry_failed: bool = False,
        handle_signals: bool = False,
    ) -> RunReport:
        """Run (or resume) ``run_id``: items done in an earlier run are skipped.

        Args:
            progress: show a rich progress bar.
            on_progress: ``callback(PipelineProgress)`` after every commit and every failure
                (sync or async; for a websocket or a log). If it raises, the run stops taking
                items, commits what it took and raises that error (state ``interrupted``).
            retry_failed: process only the items this run recorded as failed.
            handle_signals: SIGINT and SIGTERM pause the run (drain, commit, return) instead of
                killing it.

        Raises:
            PipelineError: a stage's setup failed (before any item was taken).
            Exception: the source's own error, raised after the items it gave were committed
                (the run is then ``interrupted`` in the checkpoint); likewise ``on_progress``'s.
            CheckpointError: the checkpoint cannot be used (also when it could not record
                items the sink had committed: they are processed again on resume).
            RuntimeError: this pipeline is running already (one run at a time per object).
        """
        if retry_failed and self.checkpoint is None:
            raise ValueError("'retry_failed' needs a checkpoint: pass checkpoint=...")
        check_callable("on_progress", on_progress, allow_none=True)
        if self._active is not None:
            raise RuntimeError(
                f"{self!r} is running already; wait for that run (or pause() it) first"
            )
        run = _Run(self, retry_failed, on_progress)
        self._active = run
        try:
            return await self._start(run, progress, handle_signals)
        finally:
            if self._active is run:
                self._active = None

    async def _start(self, run: _Run, progress: bool, handle_signals: bool) -> RunReport:
        cp = self.checkpoint
        if cp is not None:
            await cp.open()
            run.cp_writes_before = cp.writes
            run.done_before = await cp.keys(self.run_id, "done")
            run.done_before |= await cp.keys(self.run_id, "skipped")
            run.failed_before = await cp.keys(self.run_id, "failed")
        started_runners = []
        try:
            for runner in {id(s.runner): s.runner for s in self.stages if s.runner}.values():
                if not runner.started:
                    started_runners.append(runner)  # closed below even if start fails midway
                    await runner.start()
            return await self._run(run, progress, handle_signals)
        finally:
            for runner in started_runners:
                await runner.aclose()

    async def _run(self, run: _Run, progress: bool, handle_signals: bool) -> RunReport:
        states, cp = run.states, run.cp
        await _set_up(states)
        if cp is not None:
            await cp.start_run(self.run_id, {"pipeline": self.name})
        try:
            await self._execute(run, progress, handle_signals)
        except BaseException:
            # a cancelled run, a failing checkpoint, a stage's fatal error: the checkpoint must
            # not say "running" for a run nobody runs any more
            if cp is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(cp.set_state(self.run_id, "interrupted"))
            raise
        stopped = run.unwritten or run.source_error is not None or run.callback_error is not None
        state: RunState = (
            "interrupted" if stopped or run.cp_error else "paused" if run.paused else "finished"
        )
        if cp is not None:
            if run.cp_error is not None:
                with contextlib.suppress(Exception):
                    await cp.set_state(self.run_id, state)
                raise CheckpointError(
                    f"the checkpoint could not record {run.unmarked} item(s) the sink had "
                    f"committed as done ({describe_error(run.cp_error)}); the run stopped, and a "
                    "resumed run processes them again (the sink's upsert keeps one row each)"
                ) from run.cp_error
            await cp.set_state(self.run_id, state)
        if run.source_error is not None:
            raise run.source_error
        if run.callback_error is not None:
            raise run.callback_error
        for st in states:
            if st.hist.count:
                self._measured[st.stage.name] = st.hist.total / st.hist.count
        return RunReport(
            run_id=self.run_id,
            state=state,
            ok=run.ok,
            failed=run.failed,
            skipped=run.skipped,
            already_done=run.already_done,
            unwritten=run.unwritten,
            elapsed_s=run.clock() - run.started,
            ideal_s=_ideal_s(states),
            stages=tuple(_stage_report(st) for st in states),
            sink_flushes=run.flushes,
            checkpoint_writes=(cp.writes - run.cp_writes_before) if cp is not None else 0,
            source_round_trips=int(getattr(run.source_obj, "round_trips", 0) or 0),
            client_creations=_creations(self.registry) - run.creations_before,
            retries=sum(st.retries for st in states),
            failures=tuple(run.failures[:100]),
        )

    async def _execute(self, run: _Run, progress: bool, handle_signals: bool) -> None:
        if progress:
            from ..observe.progress import ProgressBar

            run.bar = ProgressBar(self.name)
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.pause)
        try:
            await run.execute()
        finally:
            if handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
            if run.bar is not None:
                run.bar.close()

    async def aclose(self) -> None:
        """Close the checkpoint (``async with pipeline:`` does it on exit); a later run or
        ``status()`` opens it again."""
        if self.checkpoint is not None:
            await self.checkpoint.aclose()

    async def __aenter__(self) -> Pipeline[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def status(self) -> RunStatus | None:
        """The checkpoint's record of ``run_id`` (None without a checkpoint or before a run);
        a run recorded as running whose process is gone reads ``interrupted``."""
        if self.checkpoint is None:
            return None
        await self.checkpoint.open()
        return await self.checkpoint.status(self.run_id)


class _Run:
    """The state of one ``Pipeline.run``."""

    def __init__(
        self,
        pipeline: Pipeline[Any],
        retry_failed: bool,
        on_progress: Callable[[PipelineProgress], Any] | None,
    ) -> None:
        self.p = pipeline
        # the loop's clock: the same as time.monotonic on a real loop, exact on a virtual one
        self.clock = asyncio.get_running_loop().time
        self.started = self.clock()
        self.creations_before = _creations(pipeline.registry)
        self.states = [_StageState(s) for s in pipeline.stages]
        self.cp = pipeline.checkpoint
        self.cp_writes_before = 0
        self.done_before: set[str] = set()  # keys done or skipped in earlier runs
        self.failed_before: set[str] = set()
        self.retry_failed = retry_failed
        self.on_progress = on_progress
        self.paused = False
        self.ok = self.failed = self.skipped = self.already_done = self.unwritten = 0
        self.flushes = 0
        self.total: int | None = None
        self.failures: list[FailedItem] = []
        self.marks: dict[str, list[tuple[str, str, str, str]]] = {"failed": [], "skipped": []}
        self.bar: Any = None
        self.source_obj: Any = None
        self.source_error: BaseException | None = None
        self.callback_error: BaseException | None = None  # on_progress (or the bar) raised
        self.cp_error: BaseException | None = None  # mark_done failed after a commit
        self.unmarked = 0  # items committed by the sink but not recorded done
        sink = pipeline.sink
        self.sink_takes_id = sink is not None and takes_batch_id(sink)
        self.sink_async = sink is not None and _is_async(sink)

    # -- the source --------------------------------------------------------------------------

    async def source(self) -> AsyncGenerator[_Env, None]:
        src = self.p.source
        if callable(src) and not isinstance(src, Iterable | AsyncIterable):
            src = src()
        self.source_obj = src
        try:
            self.total = len(src)  # type: ignore[arg-type]
        except TypeError:
            self.total = None
        if not isinstance(src, Iterable | AsyncIterable):
            raise TypeError(
                f"'source' must be an iterable or async iterable, got {type(src).__name__}"
            )
        key_of = self.p.key
        async with contextlib.aclosing(_aiter(src)) as items:
            async for item in items:
                if self.paused:
                    return
                env = self._admit(item, key_of)
                if env is not None:
                    yield env

    def _admit(self, item: Any, key_of: Callable[[Any], Any]) -> _Env | None:
        key = str(key_of(item))
        if self.retry_failed:
            if key not in self.failed_before:
                return None
        elif key in self.done_before or key in self.failed_before:
            self.already_done += 1
            return None
        return _Env(Item(key=key, source=item), item)

    # -- the stages --------------------------------------------------------------------------

    def _call(self, st: _StageState) -> Callable[[_Env], Awaitable[Any]]:
        stage = st.stage
        fn = stage.fn
        is_async = _is_async(fn)
        metric = f"{self.p.name}.{stage.name}"
        monitor = self.p.monitor
        clock = self.clock

        async def invoke(value: Any) -> Any:
            t0 = clock()
            error = False
            try:
                args = (value, st.context) if st.has_context else (value,)
                if is_async:
                    return await fn(*args)
                # offload copies this context into the thread: current_item() works there too
                return await _maybe_await(await offload(fn, *args))
            except BaseException:
                error = True
                raise
            finally:
                elapsed = clock() - t0
                st.hist.add(elapsed)
                monitor.record(metric, elapsed, error)

        if stage.cache is None:

            async def call(env: _Env) -> Any:
                token = _current.set(env.item)
                try:
                    return await invoke(env.value)
                finally:
                    _current.reset(token)

            return call
        cache, cache_key, shared = stage.cache, stage.cache_key, _Shared(stage.name)

        async def cached_call(env: _Env) -> Any:
            k = cache_key(env.value) if cache_key is not None else env.value
            # the load runs in a task that copies this context: the marker, not this item,
            # is what the shared computation sees
            token = _current.set(shared)
            try:
                return await cache.get_or_load(k, lambda: invoke(env.value))
            finally:
                _current.reset(token)

        return cached_call

    async def stage(
        self, st: _StageState, upstream: AsyncGenerator[_Env, None]
    ) -> AsyncGenerator[_Env, None]:
        stage = st.stage
        retry = stage.retry
        if retry is not None:
            retry = dataclasses.replace(retry, on=_NotSkip(retry._match))
        try:
            if stage.runner is not None:
                remote = dataclasses.replace(stage, retry=retry)
                metric = f"{self.p.name}.{stage.name}"
                batches = stage.runner.run_stage(remote, upstream, _remote_payload)
                async with contextlib.aclosing(batches) as results:
                    async for env, ok, value, attempts, elapsed in results:
                        st.hist.add(elapsed)
                        self.p.monitor.record(metric, elapsed, not ok)
                        st.retries += max(0, attempts - 1)
                        if ok:
                            st.ok += 1
                            yield _Env(env.item, value)
                        else:
                            await self.settle(st, env, value)
                return
            async with stream(
                self._call(st),
                upstream,
                concurrency=stage.concurrency,
                rate=stage.rate,
                retry=retry,
                breaker=stage.breaker,
                timeout_s=stage.timeout_s,
                buffer=stage.buffer,
            ) as outcomes:
                async for outcome in outcomes:
                    env = outcome.item
                    st.retries += max(0, outcome.attempts - 1)
                    if outcome.error is None:
                        st.ok += 1
                        yield _Env(env.item, outcome.value)
                    else:
                        await self.settle(st, env, outcome.error)
        finally:
            # the stream (or the runner) has stopped pulling: close what feeds it, so nothing
            # upstream keeps working (or holding a connection) for a stage that is gone
            await upstream.aclose()

    async def settle(self, st: _StageState, env: _Env, error: BaseException) -> None:
        """Record an item a stage did not pass on: skipped or failed."""
        if isinstance(error, Skip):
            st.skipped += 1
            await self.record("skipped", env.key, st.stage.name, error)
        else:
            st.failed += 1
            await self.record("failed", env.key, st.stage.name, error)

    # -- outcomes ----------------------------------------------------------------------------

    async def record(self, status: str, key: str, stage: str, exc: BaseException) -> None:
        if status == "skipped":
            self.skipped += 1
            text = getattr(exc, "reason", str(exc))
        else:
            self.failed += 1
            text = describe_error(exc)  # notes and causes too: the same text everywhere
        detail = error_detail(exc)
        if status != "skipped" and len(self.failures) < 100:
            self.failures.append(FailedItem(key=key, stage=stage, error=text, detail=detail))
        self.marks[status].append((key, stage, text, detail))
        if sum(len(v) for v in self.marks.values()) >= self.p.batch_size:
            await self.commit_marks()
        await self.report_progress()

    async def commit_marks(self) -> None:
        if self.cp is None:
            self.marks = {"failed": [], "skipped": []}
            return
        for status in ("failed", "skipped"):
            entries, self.marks[status] = self.marks[status], []  # swapped before any await
            await self.cp.mark(self.p.run_id, status, entries)

    async def report_progress(self) -> None:
        """Update the bar and call ``on_progress``. Never raises: a failing callback stops the
        run (no new items; what was taken is committed) and ``run`` raises its error then, so
        it is never mistaken for the failure of the rows or the item being recorded."""
        if self.callback_error is not None:
            return
        try:
            if self.bar is not None:
                done = self.ok + self.failed + self.skipped + self.already_done
                self.bar.update(done, self.total)
            if self.on_progress is not None:
                await _maybe_await(
                    self.on_progress(
                        PipelineProgress(
                            run_id=self.p.run_id,
                            ok=self.ok,
                            failed=self.failed,
                            skipped=self.skipped,
                            already_done=self.already_done,
                            total=self.total,
                            elapsed_s=self.clock() - self.started,
                        )
                    )
                )
        except Exception as exc:
            self.callback_error = exc
            self.paused = True

    async def flush(self, envs: list[_Env], batch_id: str | None = None) -> None:
        """The sink's flush: write the rows, then (only then) mark their items done. Once the
        sink has committed, nothing that follows is the rows' failure: a checkpoint that
        cannot record them stops the run (they are redone on resume), it does not make the
        writer write them again or bisect them as bad rows."""
        sink = self.p.sink
        if sink is not None:
            rows = [e.value for e in envs]
            extra = {"batch_id": batch_id} if self.sink_takes_id and batch_id else {}
            if self.sink_async:
                await sink(rows, **extra)
            else:
                await _maybe_await(await offload(functools.partial(sink, rows, **extra)))
            self.flushes += 1
        self.ok += len(envs)
        if self.cp is not None:
            if self.cp_error is None:
                try:
                    await self.cp.mark_done(self.p.run_id, [e.key for e in envs])
                except Exception as exc:
                    self.cp_error = exc
                    self.paused = True
                    self.unmarked += len(envs)
            else:
                self.unmarked += len(envs)
        await self.report_progress()

    async def bad_rows(self, rows: list[tuple[_Env, Exception]]) -> None:
        for env, exc in rows:
            await self.record("failed", env.key, "sink", exc)

    async def build_row(self, env: _Env) -> _Env | None:
        """The sink's row from the identity and the last value (``Pipeline(row=...)``)."""
        row = self.p.row
        assert row is not None
        try:
            return _Env(env.item, await _maybe_await(row(env.item, env.value)))
        except Exception as exc:
            await self.record("failed", env.key, "row", exc)
            return None

    async def execute(self) -> None:
        flow: AsyncGenerator[_Env, None] = self.source()
        for st in self.states:
            flow = self.stage(st, flow)
        pending_bad: list[list[tuple[_Env, Exception]]] = []
        writer: BatchWriter[_Env] = BatchWriter(
            self.flush,
            batch_size=self.p.batch_size,
            max_wait_s=self.p.max_wait_s,
            max_pending=max(self.p.batch_size * 4, 1000),
            on_failed=pending_bad.append,
        )
        try:
            # aclosing: whatever ends the loop (a flush that gave up, a cancellation), the
            # stages' streams stop now, not when the generators are collected
            with_row = self.p.row is not None
            async with contextlib.aclosing(flow) as envs, writer:
                async for env in envs:
                    if with_row:
                        built = await self.build_row(env)
                        if built is not None:
                            await writer.add(built)
                    else:
                        await writer.add(env)
                    while pending_bad:
                        await self.bad_rows(pending_bad.pop(0))
        except FlushFailed as exc:
            self.unwritten = len(exc.rows)
        except InputError as exc:  # the source raised: what it gave is committed, then re-raise
            self.source_error = exc.__cause__ or exc
        finally:
            while pending_bad:
                await self.bad_rows(pending_bad.pop(0))
            await self.commit_marks()
            await self.report_progress()


async def _aiter(items: Iterable[Any] | AsyncIterable[Any]) -> AsyncGenerator[Any, None]:
    if isinstance(items, AsyncIterable):
        iterator = items.__aiter__()
        try:
            async for item in iterator:
                yield item
        finally:
            await _aclose(iterator)  # a query source's cursor and connection, released now
    else:
        for item in items:
            yield item


async def _aclose(iterator: Any) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


def _remote_payload(env: _Env) -> tuple[Item, Any]:
    """What a Dask stage sends per item: the identity travels with the value."""
    return (env.item, env.value)


def _is_async(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004  # an object with an async __call__
    )


def _ideal_s(states: list[_StageState]) -> float:
    """The least time the calls this run made could take (see ``RunReport``): no schedule
    runs a stage's calls faster than their total duration over its concurrency, nor more of
    them than its rate allows after the burst."""
    ideal = 0.0
    for st in states:
        h, stage = st.hist, st.stage
        if not h.count:
            continue
        runner = stage.runner
        concurrency = (
            stage.concurrency
            if runner is None
            else int(getattr(runner, "concurrency_per_worker", 1))
            * max(1, int(getattr(runner, "n_workers", 1)))
        )
        busy = h.total / concurrency
        per_s = _rate_per_s(stage.rate)
        if per_s:
            busy = max(busy, max(0.0, h.count - _rate_burst(stage.rate)) / per_s)
        ideal = max(ideal, busy)
    return ideal


async def _set_up(states: list[_StageState]) -> None:
    """Run every stage's setup, concurrently (a storage handshake need not wait for an LLM
    client); the first failure cancels the others and is raised as ``PipelineError``."""

    async def one(st: _StageState) -> None:
        assert st.stage.setup is not None
        try:
            st.context = await _maybe_await(st.stage.setup())
        except Exception as exc:
            raise PipelineError(
                f"setup of stage {st.stage.name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        st.has_context = True

    try:
        async with asyncio.TaskGroup() as tg:
            for st in states:
                if st.stage.setup is not None and st.stage.runner is None:
                    tg.create_task(one(st))
    except ExceptionGroup as group:
        first = group.exceptions[0]
        raise first from first.__cause__


def _creations(registry: Registry) -> int:
    return sum(s.creations for s in registry.statistics().values())


def _stage_report(st: _StageState) -> StageReport:
    h = st.hist
    if h.count:
        summary = h.summary()
        mean, p50, p95 = summary.mean, summary.p50, summary.p95
    else:
        mean = p50 = p95 = 0.0
    return StageReport(
        name=st.stage.name,
        ok=st.ok,
        failed=st.failed,
        skipped=st.skipped,
        calls=h.count,
        retries=st.retries,
        mean_s=mean,
        p50_s=p50,
        p95_s=p95,
    )
