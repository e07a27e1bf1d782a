"""What a run reports: why each item failed (notes and causes kept), an ideal time that the run
cannot beat, and errors after a commit that are not the rows' failures."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import slipstream as ss
from slipstream._impl.pipeline import checkpoint as _checkpoint

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class NotReady(Exception):
    pass


async def not_ready(doc_id: str) -> str:
    """Fails with a note from the retry (budget spent) and a cause (the connection)."""
    try:
        raise ConnectionResetError("peer reset")
    except ConnectionResetError as exc:
        raise NotReady(doc_id) from exc


def no_budget_retry() -> ss.Retry:
    # no token ever: the first retry is refused, and the retry says so in a note
    budget = ss.RetryBudget(ratio=0, min_per_s=0, max_balance=1)
    return ss.Retry(attempts=3, on=NotReady, initial_s=0, jitter=False, budget=budget)


def bad(value: object) -> Any:
    """A wrong argument, typed Any so the type checker lets the test pass it."""
    return value


def rendered(report: ss.RunReport) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(report.render())
    return out.getvalue()


class TestFailureReasons:
    def test_the_report_and_the_checkpoint_keep_notes_and_causes(
        self, tmp_path: Path, vrun: Run
    ) -> None:
        """A retry that gives up for lack of budget: its note and the exception's cause are in
        RunReport.failures, in the checkpoint and in the rendered report, in one format."""

        async def main() -> tuple[ss.RunReport, list[Any]]:
            cp = ss.Checkpoint(tmp_path / "c.sqlite")
            pipeline = ss.Pipeline(
                ["doc-1", "doc-2"],
                [ss.Stage(not_ready, name="fetch", retry=no_budget_retry())],
                checkpoint=cp,
            )
            report = await pipeline.run()
            failures = await cp.failures("default")
            await cp.aclose()
            return report, failures

        report, failures = vrun(main())
        expected = (
            "NotReady: doc-1\n"
            "  note: slipstream: gave up after 1 attempt(s): retry budget spent\n"
            "  caused by: ConnectionResetError: peer reset"
        )
        first = report.failures[0]
        assert ("doc-1", "fetch", expected) == (first.key, first.stage, first.error)
        assert expected == failures[0].error
        assert _checkpoint.format_failure("doc-1", "fetch", expected) in rendered(report)
        assert "retry budget spent" in rendered(report)

    def test_describe_error_follows_the_chain_and_respects_from_none(self) -> None:
        """Causes and implicit contexts are followed; 'raise ... from None' hides the context;
        a repeated note appears once."""
        try:
            try:
                raise KeyError("k")
            except KeyError:
                raise ValueError("while parsing") from None
        except ValueError as exc:
            hidden = exc
        try:
            try:
                raise OSError("disk")
            except OSError:
                raise RuntimeError("write failed")  # noqa: B904  # the implicit context
        except RuntimeError as exc:
            implicit = exc
        implicit.add_note("first")
        implicit.add_note("first")
        describe_error = _checkpoint.describe_error
        assert "ValueError: while parsing" == describe_error(hidden)
        assert "RuntimeError: write failed\n  note: first\n  caused by: OSError: disk" == (
            describe_error(implicit)
        )
        assert "TimeoutError" == describe_error(TimeoutError())


class TestIdealTime:
    def test_a_run_where_most_items_fail_fast_is_not_faster_than_ideal(self, vrun: Run) -> None:
        """A breaker opens after 2 slow failures and 38 items fail without a call: the ideal
        is what the 2 calls needed, so the ratio is at least 1, never a fraction."""

        async def down(n: int) -> int:
            await asyncio.sleep(0.02)
            raise ConnectionRefusedError("endpoint down")

        breaker = ss.CircuitBreaker("down", failure_threshold=2, reset_timeout_s=60)
        report = vrun(
            ss.Pipeline(range(40), [ss.Stage(down, concurrency=1, breaker=breaker)]).run()
        )
        assert (0, 40) == (report.ok, report.failed)
        assert 2 == report.stages[0].calls
        assert report.ratio_to_ideal is not None
        assert report.ratio_to_ideal >= 1.0
        assert report.ideal_s <= report.elapsed_s

    def test_the_ideal_is_the_calls_over_the_concurrency(self, vrun: Run) -> None:
        """On the loop's (virtual) clock: 40 calls of 0.1 s, 4 at a time, need 1 s."""

        async def work(n: int) -> int:
            await asyncio.sleep(0.1)
            return n

        report = vrun(ss.Pipeline(range(40), [ss.Stage(work, concurrency=4)]).run())
        assert pytest.approx(1.0) == report.ideal_s
        assert pytest.approx(1.0) == report.ratio_to_ideal  # exact on a virtual clock

    def test_a_rate_limit_bounds_the_ideal(self, vrun: Run) -> None:
        """40 instant calls at 10/s with a burst of 1: at least 3.9 s."""
        stage = ss.Stage(abs, rate=ss.Rate(per_second=10, burst=1), concurrency=8)
        # batch_size=1: no partial batch waits on max_wait_s (see the notes: BatchWriter's
        # deadline spins on a virtual clock when the remaining wait rounds to a tiny float)
        report = vrun(ss.Pipeline(range(40), [stage], batch_size=1).run())
        assert pytest.approx(3.9) == report.ideal_s
        assert report.ratio_to_ideal is not None
        assert report.ratio_to_ideal >= 1.0 - 1e-9

    def test_a_run_without_calls_shows_n_a_not_inf(self, tmp_path: Path, vrun: Run) -> None:
        """A resumed run with nothing left to do: the ratio is None, the table says 'n/a',
        and the JSON line is valid JSON (no Infinity)."""

        def make() -> ss.Pipeline[int]:
            return ss.Pipeline(
                range(5), [ss.Stage(abs)], checkpoint=ss.Checkpoint(tmp_path / "c.sqlite")
            )

        vrun(make().run())
        again = vrun(make().run())
        assert (0, 5, "finished") == (again.ok, again.already_done, again.state)
        assert again.ratio_to_ideal is None
        text = rendered(again)
        assert "ideal n/a" in text
        assert "inf" not in text
        assert json.loads(json.dumps(again.as_dict(), allow_nan=False))["ratio_to_ideal"] is None


class TestAfterTheCommit:
    def test_a_checkpoint_failing_after_the_sink_committed_is_not_a_bad_row(
        self, tmp_path: Path, vrun: Run
    ) -> None:
        """The sink commits, then the checkpoint cannot record the batch as done: the run
        stops with CheckpointError; the rows were written once, none is marked failed."""
        db = tmp_path / "out.sqlite"
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
        conn.commit()
        conn.close()
        ckpt = tmp_path / "c.sqlite"
        flushes: list[int] = []

        def sink(rows: list[Any]) -> None:
            flushes.append(len(rows))
            c = sqlite3.connect(db)
            with c:
                c.executemany("INSERT INTO t VALUES (?)", [(str(r),) for r in rows])
            c.close()
            broken = sqlite3.connect(ckpt)  # the checkpoint loses its items table
            with broken:
                broken.execute("DROP TABLE IF EXISTS slipstream_items")
            broken.close()

        async def same(x: int) -> int:  # async: a sync stage runs in a thread, and the
            return x  # virtual clock could then reach the writer's age deadline with 4 rows

        pipeline = ss.Pipeline(
            range(8), [ss.Stage(same)], sink, checkpoint=ss.Checkpoint(ckpt), batch_size=8
        )
        with pytest.raises(ss.CheckpointError, match=r"could not record 8 item\(s\)") as info:
            vrun(pipeline.run())
        assert "no such table: slipstream_items" in str(info.value)
        assert [8] == flushes  # not written again, not bisected into "bad rows"
        conn = sqlite3.connect(db)
        assert 8 == conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]
        conn.close()
        assert pipeline.checkpoint is not None
        vrun(pipeline.checkpoint.aclose())

    def test_a_failing_progress_callback_stops_the_run_without_failing_rows(
        self, tmp_path: Path, vrun: Run
    ) -> None:
        """on_progress raising after a commit: the run stops taking items, what it took is
        committed and marked done, and run() raises the callback's error."""
        written: list[int] = []

        async def sink(rows: list[int]) -> None:
            written.extend(rows)

        def on_progress(p: ss.PipelineProgress) -> None:
            if p.ok >= 10:
                raise BrokenPipeError("the websocket went away")

        cp = ss.Checkpoint(tmp_path / "c.sqlite")
        pipeline = ss.Pipeline(range(100), [ss.Stage(abs)], sink, checkpoint=cp, batch_size=10)
        with pytest.raises(BrokenPipeError, match="websocket"):
            vrun(pipeline.run(on_progress=on_progress))

        async def check() -> tuple[set[str], set[str], Any]:
            async with cp:
                return (
                    await cp.keys("default", "done"),
                    await cp.keys("default", "failed"),
                    await cp.status("default"),
                )

        done, failed, status = vrun(check())
        assert len(written) == len(set(written))  # each row once
        assert {str(n) for n in written} == done
        assert set() == failed
        assert "interrupted" == status.state

    def test_a_cancelled_run_is_not_left_running(self, tmp_path: Path, vrun: Run) -> None:
        """A run cancelled from outside records 'interrupted', not 'running'."""
        started = asyncio.Event()

        async def slow(n: int) -> int:
            started.set()
            await asyncio.sleep(3600)
            return n

        async def main() -> Any:
            cp = ss.Checkpoint(tmp_path / "c.sqlite")
            pipeline = ss.Pipeline(range(10), [ss.Stage(slow)], checkpoint=cp)
            task = asyncio.create_task(pipeline.run())
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            status = await pipeline.status()
            await cp.aclose()
            return status

        assert "interrupted" == vrun(main()).state

    def test_one_run_at_a_time_per_pipeline(self, vrun: Run) -> None:
        """A second run() of a pipeline that is running is refused; pause() before a run
        does not pause the next run."""
        gate = asyncio.Event()

        async def wait(n: int) -> int:
            await gate.wait()
            return n

        async def main() -> ss.RunReport:
            pipeline = ss.Pipeline(range(3), [ss.Stage(wait)])
            pipeline.pause()  # no run yet: nothing to pause
            first = asyncio.create_task(pipeline.run())
            await asyncio.sleep(0)
            with pytest.raises(RuntimeError, match="running already"):
                await pipeline.run()
            gate.set()
            return await first

        report = vrun(main())
        assert ("finished", 3) == (report.state, report.ok)


class TestStageBuffer:
    def test_the_docstring_states_the_default_the_stream_uses(self) -> None:
        """Stage's buffer defaults to concurrency (what ss.stream uses), as its doc says."""
        doc = " ".join((ss.Stage.__doc__ or "").split())
        assert "``concurrency + buffer`` items" in doc
        assert "(default ``concurrency``, so ``2 * concurrency`` items in all)" in doc

    @pytest.mark.parametrize(("buffer", "expected"), [(None, 2 + 2 + 2), (0, 2 + 2)])
    def test_a_stalled_next_stage_holds_concurrency_plus_buffer(
        self, vrun: Run, buffer: int | None, expected: int
    ) -> None:
        """With the next stage stalled on one item, a stage of concurrency 2 takes at most
        2 + buffer more items from the source (buffer defaults to 2) than the next stage
        holds, and the next (concurrency 1, buffer 1) holds 2: its stalled item and one it
        took when it pulled. Each stage holds at most concurrency + buffer, and no more."""
        taken: list[int] = []
        stall = asyncio.Event()

        def source() -> Any:
            for i in range(50):
                taken.append(i)
                yield i

        async def first(n: int) -> int:
            return n

        async def stalled(n: int) -> int:
            await stall.wait()
            return n

        async def main() -> int:
            pipeline = ss.Pipeline(
                source,
                [ss.Stage(first, concurrency=2, buffer=buffer), ss.Stage(stalled, concurrency=1)],
            )
            task = asyncio.create_task(pipeline.run())
            await asyncio.sleep(1)  # every task is parked: the virtual clock jumps here
            count = len(taken)
            stall.set()
            await task
            return count

        assert expected == vrun(main())


class TestArgumentsNameTheirParameter:
    @pytest.mark.parametrize(
        ("make", "error", "match"),
        [
            (
                lambda: ss.Stage(abs, concurrency=bad("8")),
                TypeError,
                "'concurrency' must be an int",
            ),
            (lambda: ss.Stage(abs, latency_s=bad("1")), TypeError, "'latency_s' must be a number"),
            (lambda: ss.Stage(abs, timeout_s=bad("1")), TypeError, "'timeout_s' must be a number"),
            (lambda: ss.Stage(abs, timeout_s=-1), ValueError, "'timeout_s' must be > 0"),
            (lambda: ss.Stage(abs, buffer=-1), ValueError, "'buffer' must be >= 0"),
            (lambda: ss.Stage(abs, cache_key=bad(3)), TypeError, "'cache_key' must be callable"),
            (lambda: ss.Pipeline([], [], batch_size=bad("9")), TypeError, "'batch_size' must be"),
            (lambda: ss.Pipeline([], [], max_wait_s=bad("1")), TypeError, "'max_wait_s' must be"),
            (lambda: ss.Pipeline([], [], row=bad(3)), TypeError, "'row' must be callable"),
            (lambda: ss.Checkpoint("c", heartbeat_s=bad("1")), TypeError, "'heartbeat_s' must be"),
            (lambda: ss.Checkpoint("c", heartbeat_s=0), ValueError, "'heartbeat_s' must be > 0"),
            (
                lambda: ss.DaskRunner(max_wait_s=bad("0")),
                TypeError,
                "'max_wait_s' must be a number",
            ),
            (lambda: ss.DaskRunner(n_workers=bad(1.5)), TypeError, "'n_workers' must be an int"),
            (
                lambda: ss.query_source("x", "SELECT 1", batch_size=bad("9")),
                TypeError,
                "'batch_size'",
            ),
            (lambda: ss.query_source("x", "SELECT 1", params=bad(3)), TypeError, "'params'"),
        ],
    )
    def test_bad_numbers_raise_errors_naming_the_parameter(
        self, make: Callable[[], Any], error: type[Exception], match: str
    ) -> None:
        """A wrong type or value raises TypeError or ValueError naming the parameter, never a
        bare comparison error."""
        with pytest.raises(error, match=match) as info:
            make()
        assert "not supported between" not in str(info.value)

    def test_directory_source_checks_its_arguments(self, tmp_path: Path) -> None:
        """DirectorySource names 'batch_size', 'pattern' and 'root'."""
        with pytest.raises(TypeError, match="'batch_size' must be an int"):
            ss.DirectorySource(tmp_path, batch_size=bad("4"))
        with pytest.raises(TypeError, match="'pattern'"):
            ss.DirectorySource(tmp_path, bad(3))
        with pytest.raises(TypeError, match="'root'"):
            ss.DirectorySource(bad(3))


class TestStageStatistics:
    def test_the_stage_report_and_the_monitor_see_every_call_and_hooks_each(
        self, vrun: Run
    ) -> None:
        """A plain stage records its calls per batch: the report and ``ss.monitor`` count all
        50 (5 failed), and a monitor hook still hears each call with its error flag."""
        monitor = ss.Monitor()
        heard: list[bool] = []

        async def odd(n: int) -> int:
            if n % 10 == 3:
                raise ValueError(n)
            return n

        first = ss.Pipeline(range(50), [ss.Stage(odd, name="odd")], monitor=monitor, name="p")
        report = vrun(first.run())
        (stage,) = report.stages
        assert (stage.calls, stage.ok, stage.failed) == (50, 45, 5)
        stat = monitor.report()["p.odd"]
        assert (stat["count"], stat["errors"]) == (50, 5)
        monitor.add_hook(lambda name, s, error: heard.append(error))
        again = ss.Pipeline(range(50), [ss.Stage(odd, name="odd")], monitor=monitor, name="p")
        vrun(again.run())
        assert (len(heard), sum(heard)) == (50, 5)
        assert monitor.report()["p.odd"]["count"] == 100
