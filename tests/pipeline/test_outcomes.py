"""Where each item ends: failed with its error, skipped, isolated as a bad row, served from a
cache, retried; and, whatever the mix, in exactly one place."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slipstream as ss
from slipstream import testing

from .tables import results_db, rows, to_row

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class TestOutcomes:
    def test_failures_and_skips_are_recorded_and_retry_failed_runs_only_them(
        self, tmp_path: Path, vrun: Run
    ) -> None:
        """Failures keep their error and detail in the checkpoint, skips are counted apart,
        retry_failed runs only the failed items, and a plain resume then has nothing left."""
        db = results_db(tmp_path / "r.sqlite")
        broken = {3, 7, 11}

        class Unparseable(ValueError):
            def __init__(self, raw: str) -> None:
                super().__init__("answer does not validate")
                self.detail = raw

        async def work(n: int) -> dict[str, Any]:
            if n % 5 == 0:
                raise ss.Skip(f"asset {n} is missing")
            if n in broken:
                raise Unparseable(f"raw answer for {n}")
            return to_row(n)

        def make() -> ss.Pipeline[int]:
            return ss.Pipeline(
                range(20),
                [ss.Stage(work)],
                ss.sqlite_flush(db, "results", ["key", "value"], conflict=["key"]),
                checkpoint=ss.Checkpoint(tmp_path / "ckpt.sqlite"),
                run_id="r1",
            )

        async def first_run() -> tuple[ss.RunReport, Any, Any]:
            pipeline = make()
            report = await pipeline.run()
            assert pipeline.checkpoint is not None
            failures = await pipeline.checkpoint.failures("r1")
            status = await pipeline.status()
            await pipeline.checkpoint.aclose()
            return report, failures, status

        report, failures, status = vrun(first_run())
        assert (13, 3, 4) == (report.ok, report.failed, report.skipped)
        assert ["11", "3", "7"] == [f.key for f in failures]
        assert all(f.stage == "work" for f in failures)
        assert "Unparseable: answer does not validate" == failures[0].error
        assert "raw answer for 11" == failures[0].detail
        assert (13, 3, 4, "finished") == (status.done, status.failed, status.skipped, status.state)

        broken.clear()  # the cause is fixed: retry the failed items alone
        again = vrun(make().run(retry_failed=True))
        assert (3, 0, 0) == (again.ok, again.failed, again.skipped)
        assert 3 == again.stages[0].calls  # only the failed items ran
        assert 16 == len(rows(db))
        final = vrun(make().run())  # a plain resume has nothing left to do
        assert (0, 20) == (final.ok, final.already_done)

    def test_bad_rows_at_the_sink_fail_alone(self, tmp_path: Path, vrun: Run) -> None:
        """Rows the database refuses are isolated and recorded as failed at 'sink'; the good
        rows of the same batches are written."""
        db = tmp_path / "r.sqlite"
        conn = sqlite3.connect(db)
        conn.execute(
            "CREATE TABLE results (key TEXT PRIMARY KEY, value INTEGER CHECK (value < 50))"
        )
        conn.commit()
        conn.close()
        pipeline = ss.Pipeline(
            range(60),
            [ss.Stage(lambda n: {"key": str(n), "value": n}, name="row")],
            ss.sqlite_flush(db, "results", ["key", "value"]),
            checkpoint=ss.Checkpoint(tmp_path / "c.sqlite"),
            batch_size=16,
        )
        report = vrun(pipeline.run())
        assert (50, 10) == (report.ok, report.failed)
        assert {"sink"} == {f.stage for f in report.failures}
        assert 50 == len(rows(db))

    def test_a_cached_stage_calls_once_per_cache_key(self, vrun: Run) -> None:
        """Items sharing a cache key share one call: 30 pairs over 10 assets make 10 calls."""
        fetches: list[int] = []

        async def fetch(pair: tuple[int, int]) -> tuple[int, int]:
            fetches.append(pair[0])
            await asyncio.sleep(0.001)
            return pair

        pairs = [(asset, schema) for asset in range(10) for schema in range(3)]
        report = vrun(
            ss.Pipeline(
                pairs,
                [ss.Stage(fetch, cache=ss.Cache(), cache_key=lambda p: p[0], concurrency=6)],
                key=lambda p: f"{p[0]}:{p[1]}",
            ).run()
        )
        assert 30 == report.ok
        assert sorted(fetches) == list(range(10))  # one fetch per asset, not per pair

    def test_retries_are_counted_and_skip_is_never_retried(self, vrun: Run) -> None:
        """Retried calls are counted in the report, and a Skip is final, even under a retry
        policy that matches every Exception."""
        attempts: dict[int, int] = {}

        async def flaky(n: int) -> int:
            attempts[n] = attempts.get(n, 0) + 1
            if n == 1:
                raise ss.Skip("empty document")
            if attempts[n] == 1:
                raise ConnectionResetError("transient")
            return n

        retry = ss.Retry(attempts=3, on=Exception, initial_s=0, jitter=False)
        report = vrun(ss.Pipeline(range(5), [ss.Stage(flaky, retry=retry)]).run())
        assert (4, 1) == (report.ok, report.skipped)
        assert 4 == report.retries
        assert 1 == attempts[1]

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        n=st.integers(0, 60),
        failing=st.sets(st.integers(0, 59)),
        skipping=st.sets(st.integers(0, 59)),
        batch=st.integers(1, 25),
        concurrency=st.integers(1, 6),
    )
    def test_every_item_ends_exactly_once_in_one_place(
        self,
        tmp_path_factory: pytest.TempPathFactory,
        n: int,
        failing: set[int],
        skipping: set[int],
        batch: int,
        concurrency: int,
    ) -> None:
        """Whatever the mix of failures, skips, batch size and concurrency, each item is
        written once or recorded failed or skipped, never two of these, never none."""
        tmp = tmp_path_factory.mktemp("prop")
        written: list[str] = []

        async def work(i: int) -> str:
            await asyncio.sleep(0)
            if i in skipping:
                raise ss.Skip("no")
            if i in failing:
                raise ValueError(i)
            return str(i)

        async def sink(keys: list[str]) -> None:
            written.extend(keys)

        async def main() -> tuple[ss.RunReport, set[str], set[str], set[str]]:
            cp = ss.Checkpoint(tmp / "c.sqlite")
            report = await ss.Pipeline(
                range(n),
                [ss.Stage(work, concurrency=concurrency)],
                sink,
                checkpoint=cp,
                batch_size=batch,
            ).run()
            out = (
                await cp.keys("default", "done"),
                await cp.keys("default", "failed"),
                await cp.keys("default", "skipped"),
            )
            await cp.aclose()
            return (report, *out)

        report, done, failed, skipped = testing.run(main(), virtual_clock=True)
        expect_skip = {str(i) for i in range(n) if i in skipping}
        expect_fail = {str(i) for i in range(n) if i in failing and i not in skipping}
        expect_ok = {str(i) for i in range(n)} - expect_skip - expect_fail
        assert sorted(expect_ok) == sorted(written)  # each once
        assert (expect_ok, expect_fail, expect_skip) == (done, failed, skipped)
        assert (len(expect_ok), len(expect_fail), len(expect_skip)) == (
            report.ok,
            report.failed,
            report.skipped,
        )
