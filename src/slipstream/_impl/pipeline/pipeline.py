"""``ss.Pipeline``: a source, stages and a sink, streaming, resumable, nothing lost.

A pipeline composes the primitives for a job that walks many items through slow steps into a
database (annotate every asset with every schema; PDF -> LLM -> rows; commit every 100 genes,
pause, resume):

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

This module is the facade: arguments, ``plan`` (``plan.py``), ``pause`` and ``run``, which hands
a frozen ``RunSpec`` and its pause switch to the engine (``run.py``).

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

from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar, final

from ..clients.registry import Registry, default_registry
from ..core.checks import check_callable, check_int, check_seconds
from ..core.resource import AsyncResource
from ..db.sinks import lifecycle_of
from ..detect.scope import Watch
from ..observe.monitor import Monitor
from ..observe.monitor import monitor as default_monitor
from .checkpoint import Checkpoint, RunStatus
from .plan import estimate
from .report import PipelineProgress, Plan, RunReport, StageReport
from .run import Run, RunSpec
from .stage import Item, Stage

__all__ = ["Pipeline"]

T = TypeVar("T")


def _default_key(item: Any) -> str:
    kind = type(item)  # the common cases first: neither str nor int has a .key
    if kind is str:
        return item  # type: ignore[no-any-return]
    if kind is int:
        return str(item)
    key = getattr(item, "key", None)
    if isinstance(key, str):
        return key
    if isinstance(item, str | int) and not isinstance(item, bool):
        return str(item)
    raise TypeError(
        f"cannot derive a key from a {type(item).__name__} item: pass key=lambda item: ... "
        "(a stable string per item; the checkpoint and the sink's upsert use it)"
    )


class _PauseSwitch:
    """One run's pause: ``pause()`` turns it on, the engine reads it (calls it) before each
    item. A fresh switch per run, so a pause between runs does not pause the next one."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = False

    def __call__(self) -> bool:
        return self.on


@final
class Pipeline(AsyncResource, Generic[T]):
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
            write each batch once). A sink may have a lifecycle, ``setup()`` and ``aclose()``
            (sync or async; the built-in flushes have one: their pool and DDL): ``setup`` runs
            once per run beside the stages' setups, before any item (its failure is a
            ``PipelineError``), and ``aclose`` once when the run ends, on failure and
            cancellation too. None: an item is done after the last stage.
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
        detect: count the statements sent through instrumented drivers (``ss.instrument``):
            the run is a query scope and each local stage's calls one inside it, so the report
            has each stage's queries per item and N+1 findings, and ``plan`` prices them.
            True: the production gates of ``ss.watch`` (``min_repeats=5``,
            ``min_total_s=0.05``); an ``ss.watch(...)`` (not entered; its ``min_repeats``,
            ``min_total_s`` and ``record_to`` are read, a ``record_to`` file gets the run's
            findings at its end); False: count nothing.
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
        detect: Watch | bool = True,
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
        lifecycle_of(sink, "sink")  # a setup or aclose that is not callable is named now
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
        if detect is True:
            detect = Watch(min_repeats=5, min_total_s=0.05, slow_s=1.0, record_to=None)
        elif detect is not False and not isinstance(detect, Watch):
            raise TypeError(
                f"'detect' must be True, False or an ss.watch(...) with its gates, got "
                f"{type(detect).__name__}"
            )
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
        self.detect: Watch | None = None if detect is False else detect
        self._pause: _PauseSwitch | None = None  # the switch of the run in progress, if any
        self._measured: dict[str, float] = {}  # stage -> mean seconds per call, last run
        self._queried: dict[str, StageReport] = {}  # stage -> its last measured queries

    def __repr__(self) -> str:
        stages = " -> ".join(s.name for s in self.stages)
        return f"Pipeline({self.name!r}: source -> {stages} -> sink, run_id={self.run_id!r})"

    # -- control -----------------------------------------------------------------------------

    def pause(self) -> None:
        """Stop taking new items; the items in flight finish and are committed, then ``run``
        returns with ``state="paused"``. Safe to call from a signal handler. It pauses the run
        in progress; with none, it does nothing (a later run is not paused by it)."""
        switch = self._pause
        if switch is not None:
            switch.on = True

    # -- planning ----------------------------------------------------------------------------

    def plan(self, n_items: int, *, latency_s: dict[str, float] | None = None) -> Plan:
        """Estimate the makespan of ``n_items`` from each stage's latency, concurrency and rate.

        A stage's latency is ``latency_s[name]``, else what the last run measured, else the
        stage's ``latency_s``. Each stage sustains ``min(concurrency / latency, rate)`` items a
        second; the slowest sets the pace, and the others add one latency each to fill the
        pipe. The advice names the concurrency that lets each stage keep up with the
        bottleneck (or saturate its rate limit).

        After a run that measured statements (``detect``), each stage's ``queries_per_item``
        gives the queries ``n_items`` would make, and a stage making one or more per item is
        named in the advice with its finding and the rule's fix.
        """
        if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 0:
            raise ValueError(f"'n_items' must be an int >= 0, got {n_items!r}")
        return estimate(self.stages, n_items, latency_s or {}, self._measured, self._queried)

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
            PipelineError: a stage's or the sink's setup failed (before any item was taken);
                or the sink's ``aclose`` failed after a run that went well.
            Exception: the source's own error, raised after the items it gave were committed
                (the run is then ``interrupted`` in the checkpoint); likewise ``on_progress``'s.
            CheckpointError: the checkpoint cannot be used (also when it could not record
                items the sink had committed: they are processed again on resume).
            RuntimeError: this pipeline is running already (one run at a time per object).
        """
        if retry_failed and self.checkpoint is None:
            raise ValueError("'retry_failed' needs a checkpoint: pass checkpoint=...")
        check_callable("on_progress", on_progress, allow_none=True)
        if self._pause is not None:
            raise RuntimeError(
                f"{self!r} is running already; wait for that run (or pause() it) first"
            )
        spec = RunSpec(
            name=self.name,
            source=self.source,
            stages=tuple(self.stages),
            sink=self.sink,
            key=self.key,
            row=self.row,
            checkpoint=self.checkpoint,
            run_id=self.run_id,
            batch_size=self.batch_size,
            max_wait_s=self.max_wait_s,
            registry=self.registry,
            monitor=self.monitor,
            retry_failed=retry_failed,
            on_progress=on_progress,
            progress=progress,
            on_signal=self.pause if handle_signals else None,
            detect=self.detect,
        )
        switch = self._pause = _PauseSwitch()
        try:
            report = await Run(spec, switch)()
        finally:
            if self._pause is switch:
                self._pause = None
        for stage in report.stages:
            if stage.calls:
                self._measured[stage.name] = stage.mean_s
            if stage.queries_per_item is not None:
                self._queried[stage.name] = stage
        return report

    async def aclose(self) -> None:
        """Close the checkpoint (``async with pipeline:`` does it on exit); a later run or
        ``status()`` opens it again."""
        if self.checkpoint is not None:
            await self.checkpoint.aclose()

    async def status(self) -> RunStatus | None:
        """The checkpoint's record of ``run_id`` (None without a checkpoint or before a run);
        a run recorded as running whose process is gone reads ``interrupted``."""
        if self.checkpoint is None:
            return None
        await self.checkpoint.open()
        return await self.checkpoint.status(self.run_id)
