"""The run engine: one ``Pipeline.run``, from a frozen ``RunSpec``.

``Run(spec, is_paused)()`` opens the checkpoint (what earlier runs did), starts the stages'
runners, runs the setups, then streams: the source's items are admitted (done ones skipped),
go through the stages (``steps.flow_through``), get their row (``row=``) and reach a
``BatchWriter`` whose flush writes the sink and only then marks them done (``Ledger``). It
reads nothing but the spec, and ``is_paused()`` (the owner's pause switch) before each item.
Time is read on the clock seam (``core.clock.now``), so a virtual-clock test is exact.
With ``spec.detect``, the run is a query scope (``ss.watch``) and each local stage a scope
inside it, set per call (``steps``): the report has the statements of each and their N+1s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..clients.registry import Registry
from ..core.clock import now
from ..core.errors import (
    CheckpointError,
    FlushFailed,
    InputError,
    PipelineError,
    RowsRejected,
    describe_shape,
)
from ..db.batching import default_retry
from ..db.sinks import call_hook, lifecycle_of
from ..db.sinks.lifecycle import set_up as set_up_sink
from ..db.writer import BatchWriter, takes_batch_id
from ..detect.scope import Watch
from ..loop.offload import offload
from ..observe.monitor import Monitor
from .checkpoint import Checkpoint, RunState, describe_error
from .ledger import Ledger
from .plan import ideal_s
from .report import PipelineProgress, RunReport
from .stage import Item, Stage, _is_async, _maybe_await, new_item
from .steps import Env, flow_through, set_up, stage_states

__all__ = ["Run", "RunSpec"]

# items a plain iterable source hands on per step: the Stage default takes 16 ahead
_CHUNK = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSpec:
    """Everything one run needs, fixed when it starts (the arguments of ``ss.Pipeline`` and
    of ``Pipeline.run``)."""

    name: str
    source: Any
    stages: tuple[Stage, ...]
    sink: Callable[..., Any] | None
    key: Callable[[Any], Any]
    row: Callable[[Item, Any], Any] | None
    checkpoint: Checkpoint | None
    run_id: str
    batch_size: int
    max_wait_s: float
    registry: Registry
    monitor: Monitor
    retry_failed: bool = False
    on_progress: Callable[[PipelineProgress], Any] | None = None
    progress: bool = False
    on_signal: Callable[[], None] | None = None  # SIGINT and SIGTERM call it (a pause)
    detect: Watch | None = None  # the gates (and record_to) of the run's query scopes


class Run:
    """The state of one run; calling it runs it and returns its ``RunReport``."""

    def __init__(self, spec: RunSpec, is_paused: Callable[[], bool]) -> None:
        self.spec = spec
        self.is_paused = is_paused
        self.started = now()
        self.creations_before = _creations(spec.registry)
        self.watch, self.states = stage_states(spec.stages, spec.detect)
        self.ledger = Ledger(
            spec.run_id, spec.checkpoint, spec.batch_size, spec.on_progress, self.started
        )
        self.cp_writes_before = 0
        self.done_before: set[str] = set()  # keys done or skipped in earlier runs
        self.failed_before: set[str] = set()
        self.flushes = 0
        self.unwritten = 0
        self.source_obj: Any = None
        self.source_error: BaseException | None = None
        self.sink_error: PipelineError | None = None  # the sink rejects the rows' shape
        sink = spec.sink
        self.sink_takes_id = sink is not None and takes_batch_id(sink)
        self.sink_async = sink is not None and _is_async(sink)
        self.sink_setup, self.sink_close = lifecycle_of(sink, "sink")
        self.sink_opened = False  # its setup started: its aclose runs at the end

    # -- the run's life ----------------------------------------------------------------------

    async def __call__(self) -> RunReport:
        if self.watch is None:
            return await self._whole()
        # the run's scope: what the source, the sink and the row builder send counts here (and
        # in a scope around the run), each stage's calls also in the stage's (set per call)
        async with self.watch:
            return await self._whole()

    async def _whole(self) -> RunReport:
        spec, cp = self.spec, self.spec.checkpoint
        if cp is not None:
            await cp.open()
            self.cp_writes_before = cp.writes
            self.done_before = await cp.keys(spec.run_id, "done")
            self.done_before |= await cp.keys(spec.run_id, "skipped")
            self.failed_before = await cp.keys(spec.run_id, "failed")
        started_runners = []
        error: BaseException | None = None
        try:
            for runner in {id(s.runner): s.runner for s in spec.stages if s.runner}.values():
                if not runner.started:
                    started_runners.append(runner)  # closed below even if start fails midway
                    await runner.start()
            return await self._run()
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                if self.sink_opened:  # once per run, on failure and cancellation too
                    await asyncio.shield(self._close_sink(error))
            finally:
                for runner in started_runners:
                    await runner.aclose()

    async def _open_sink(self) -> None:
        assert self.sink_setup is not None
        self.sink_opened = True
        await set_up_sink(self.sink_setup, default_retry())  # connection errors: as a flush's

    async def _close_sink(self, error: BaseException | None) -> None:
        """The sink's ``aclose()``: its failure fails a run that went well (everything was
        committed and marked first), or is noted on the error the run raises already."""
        if self.sink_close is None:
            return
        try:
            await call_hook(self.sink_close)
        except Exception as exc:
            if error is None:
                raise PipelineError(
                    f"closing the sink failed: {type(exc).__name__}: {exc} (every item was "
                    "committed and marked first)"
                ) from exc
            error.add_note(f"slipstream: closing the sink failed too: {type(exc).__name__}: {exc}")

    async def _run(self) -> RunReport:
        spec, cp, ledger = self.spec, self.spec.checkpoint, self.ledger
        await set_up(self.states, self._open_sink if self.sink_setup is not None else None)
        if cp is not None:
            await cp.start_run(spec.run_id, {"pipeline": spec.name})
        try:
            await self._execute()
        except BaseException:
            # a cancelled run, a failing checkpoint, a stage's fatal error: the checkpoint must
            # not say "running" for a run nobody runs any more
            if cp is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(cp.set_state(spec.run_id, "interrupted"))
            raise
        stopped = (
            self.unwritten or self.source_error is not None or ledger.callback_error is not None
        )
        state: RunState = (
            "interrupted"
            if stopped or ledger.cp_error
            else "paused"
            if self.is_paused()
            else "finished"
        )
        if cp is not None:
            if ledger.cp_error is not None:
                with contextlib.suppress(Exception):
                    await cp.set_state(spec.run_id, state)
                raise CheckpointError(
                    f"the checkpoint could not record {ledger.unmarked} item(s) the sink had "
                    f"committed as done ({describe_error(ledger.cp_error)}); the run stopped, "
                    "and a resumed run processes them again (the sink's upsert keeps one row each)"
                ) from ledger.cp_error
            await cp.set_state(spec.run_id, state)
        if self.sink_error is not None:
            raise self.sink_error
        if self.source_error is not None:
            raise self.source_error
        if ledger.callback_error is not None:
            raise ledger.callback_error
        if self.watch is not None:
            await asyncio.sleep(0)  # asyncpg's last query records arrive in this loop turn
        return self._report(state)

    async def _execute(self) -> None:
        spec = self.spec
        if spec.progress:
            from ..observe.progress import ProgressBar

            self.ledger.bar = ProgressBar(spec.name)
        loop = asyncio.get_running_loop()
        on_signal = spec.on_signal
        if on_signal is not None:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal)
        try:
            await self._stream()
        finally:
            if on_signal is not None:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
            if self.ledger.bar is not None:
                self.ledger.bar.close()

    def _report(self, state: RunState) -> RunReport:
        spec, cp, ledger, states = self.spec, self.spec.checkpoint, self.ledger, self.states
        seen = self.watch.snapshot() if self.watch is not None else None
        return RunReport(
            run_id=spec.run_id,
            state=state,
            ok=ledger.ok,
            failed=ledger.failed,
            skipped=ledger.skipped,
            already_done=ledger.already_done,
            unwritten=self.unwritten,
            elapsed_s=now() - self.started,
            ideal_s=ideal_s((st.stage, st.hist.count, st.hist.total) for st in states),
            stages=tuple(st.report() for st in states),
            sink_flushes=self.flushes,
            checkpoint_writes=(cp.writes - self.cp_writes_before) if cp is not None else 0,
            source_round_trips=int(getattr(self.source_obj, "round_trips", 0) or 0),
            client_creations=_creations(spec.registry) - self.creations_before,
            retries=sum(st.retries for st in states),
            failures=tuple(ledger.failures),
            queries=seen.queries if seen is not None else 0,
            db_s=seen.db_s if seen is not None else 0.0,
            findings=seen.findings if seen is not None else (),
        )

    # -- the items ---------------------------------------------------------------------------

    async def _stream(self) -> None:
        """The source through the stages into the writer, until the source ends, the run is
        paused or halted, or the writer gives up."""
        spec, ledger = self.spec, self.ledger
        flow: AsyncGenerator[list[Env], None] = self._source()
        for st in self.states:
            metric = f"{spec.name}.{st.stage.name}"
            flow = flow_through(st, flow, metric=metric, monitor=spec.monitor, record=ledger.record)
        pending_bad: list[list[tuple[Env, Exception]]] = []
        writer: BatchWriter[Env] = BatchWriter(
            self._flush,
            batch_size=spec.batch_size,
            max_wait_s=spec.max_wait_s,
            max_pending=max(spec.batch_size * 4, 1000),
            on_failed=pending_bad.append,
        )
        writer._core.row_of = _value  # the sink gets the items' values: judge those
        try:
            # aclosing: whatever ends the loop (a flush that gave up, a cancellation), the
            # stages' streams stop now, not when the generators are collected
            with_row = spec.row is not None
            async with contextlib.aclosing(flow) as chunks, writer:
                async for envs in chunks:
                    if not with_row:
                        await writer.add_many(envs)
                    for env in envs if with_row else ():
                        built = await self._build_row(env)
                        if built is not None:
                            await writer.add(built)
                    while pending_bad:
                        await self._bad_rows(pending_bad.pop(0))
        except FlushFailed as exc:
            self.unwritten = len(exc.rows)
            if isinstance(exc.__cause__, RowsRejected):
                self.sink_error = self._rejected(exc.__cause__)
        except InputError as exc:  # the source raised: what it gave is committed, then re-raise
            self.source_error = exc.__cause__ or exc
        finally:
            while pending_bad:
                await self._bad_rows(pending_bad.pop(0))
            await ledger.commit_marks()
            await ledger.report_progress()

    def _rejected(self, rejected: RowsRejected) -> PipelineError:
        """The run's error when the sink rejects the shape of every row: what makes the rows
        (the last stage, or ``row=``), what the sink got, and what a row should be."""
        spec = self.spec
        if spec.row is not None:
            made = "the rows row= builds"
        elif spec.stages:
            made = f"what stage {spec.stages[-1].name!r} returns"
        else:
            made = "the source's items"
        sink = getattr(spec.sink, "__qualname__", None) or repr(spec.sink)
        error = PipelineError(
            f"the sink {sink} rejects {made}: {describe_shape(rejected.sample)} per item. The "
            f"first and the last of a batch of {len(rejected.rows)}, written alone, each raised "
            f"{type(rejected.error).__name__}: {rejected.error}, and every item of the batch "
            "has that shape: this is the code, not the data. A sink takes one row per item: a "
            "mapping of its columns or a sequence in their order (return it from the last "
            "stage, or build it with row=). The run stopped at that batch: none of it was "
            "written, no item was marked failed, and a run after the fix processes them."
        )
        error.__cause__ = rejected.error
        return error

    async def _source(self) -> AsyncGenerator[list[Env], None]:
        src = self.spec.source
        if callable(src) and not isinstance(src, Iterable | AsyncIterable):
            src = src()
        self.source_obj = src
        try:
            self.ledger.total = len(src)
        except TypeError:
            self.ledger.total = None
        if not isinstance(src, Iterable | AsyncIterable):
            raise TypeError(
                f"'source' must be an iterable or async iterable, got {type(src).__name__}"
            )
        key_of, ledger, is_paused = self.spec.key, self.ledger, self.is_paused
        if not isinstance(src, AsyncIterable):
            # a plain iterable: its items in lists of as many as the first stage may take
            # (it sends the number; no stage or a runner's sends none); each item still
            # checks the pause switch first
            chunk: list[Env] = []
            # an empty list first: the first stage then sends how many it may take (a
            # just-started generator can be sent nothing); _CHUNK when nobody sends
            want = (yield chunk) or _CHUNK
            failed: Exception | None = None
            # a first run (nothing done or failed before, not retrying): every item is
            # admitted, so _admit's checks are skipped (the per-item path)
            fresh = not (self.spec.retry_failed or self.done_before or self.failed_before)
            try:
                for item in src:
                    if ledger.halted or is_paused():
                        break
                    if fresh:
                        key = key_of(item)
                        env: Env | None = Env(
                            new_item(key if type(key) is str else str(key), item), item
                        )
                    else:
                        env = self._admit(item, key_of)
                    if env is not None:
                        chunk.append(env)
                        if len(chunk) >= want:
                            want = (yield chunk) or _CHUNK
                            chunk = []
            except Exception as exc:  # what the source gave before it raised goes on first
                failed = exc
            if chunk:
                yield chunk
            if failed is not None:
                raise failed
            return
        yield []  # as above: the same start for every chunk generator
        async with contextlib.aclosing(_aiter(src)) as items:
            async for item in items:
                if ledger.halted or is_paused():
                    return
                env = self._admit(item, key_of)
                if env is not None:
                    yield [env]  # one at a time: the next may take a while to come

    def _admit(self, item: Any, key_of: Callable[[Any], Any]) -> Env | None:
        """The item on its way, or None when this run does not process it (done before; or,
        retrying failures, not one of them)."""
        key = key_of(item)
        if type(key) is not str:
            key = str(key)
        if self.spec.retry_failed:
            if key not in self.failed_before:
                return None
        elif (self.done_before or self.failed_before) and (
            key in self.done_before or key in self.failed_before
        ):
            self.ledger.already_done += 1
            return None
        return Env(new_item(key, item), item)

    async def _build_row(self, env: Env) -> Env | None:
        """The sink's row from the identity and the last value (``Pipeline(row=...)``)."""
        row = self.spec.row
        assert row is not None
        try:
            return Env(env.item, await _maybe_await(row(env.item, env.value)))
        except Exception as exc:
            await self.ledger.record("failed", env.key, "row", exc)
            return None

    async def _flush(self, envs: list[Env], batch_id: str | None = None) -> None:
        """The writer's flush: write the rows to the sink, then (only then) mark them done."""
        sink = self.spec.sink
        if sink is not None:
            rows = [e.value for e in envs]
            extra = {"batch_id": batch_id} if self.sink_takes_id and batch_id else {}
            if self.sink_async:
                await sink(rows, **extra)
            else:
                await _maybe_await(await offload(functools.partial(sink, rows, **extra)))
            self.flushes += 1
        await self.ledger.mark_done([e.key for e in envs])

    async def _bad_rows(self, rows: list[tuple[Env, Exception]]) -> None:
        for env, exc in rows:
            await self.ledger.record("failed", env.key, "sink", exc)


def _value(env: Env) -> Any:
    return env.value


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


def _creations(registry: Registry) -> int:
    return sum(s.creations for s in registry.statistics().values())
