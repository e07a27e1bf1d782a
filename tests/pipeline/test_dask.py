"""ss.DaskRunner: a stage on a LocalCluster (127.0.0.1) behaves exactly as a local one.

Real worker processes, so a real loop; only the test that bounds how long a cancellation
takes is ``realtime``."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss

pytest.importorskip("distributed")

sys.path.insert(0, str(Path(__file__).parents[1] / "workers"))
import dask_jobs


class TestOutcomes:
    def test_a_dask_stage_gives_the_same_outcomes_as_a_local_one(self, tmp_path: Path) -> None:
        """Outcomes, retries, skips, the failure's detail (from an exception pickle cannot
        rebuild), one client per worker, and both workers taking batches: as in a local run."""
        rows: list[dict[str, Any]] = []

        async def sink(batch: list[dict[str, Any]]) -> None:
            rows.extend(batch)

        retry = ss.Retry(attempts=3, on=ConnectionResetError, initial_s=0, jitter=False)

        async def main() -> tuple[ss.RunReport, dict[str, int], Any]:
            async with ss.DaskRunner(batch_size=25, concurrency_per_worker=8) as runner:
                pipeline = ss.Pipeline(
                    range(200),
                    [ss.Stage(dask_jobs.work, setup=dask_jobs.setup, retry=retry, runner=runner)],
                    sink,
                    checkpoint=ss.Checkpoint(tmp_path / "c.sqlite"),
                )
                report = await pipeline.run()
                creations = await runner.creations_per_worker()
                assert pipeline.checkpoint is not None
                failures = await pipeline.checkpoint.failures("default")
                await pipeline.checkpoint.aclose()
                return report, creations, failures

        report, creations, failures = asyncio.run(main())
        skipped = {n for n in range(200) if n % 10 == 9}
        expected_ok = {str(n) for n in range(200) if n not in skipped and n != 13}
        assert expected_ok == {r["key"] for r in rows}
        assert (len(expected_ok), 1, len(skipped)) == (report.ok, report.failed, report.skipped)
        retried = {n for n in range(200) if n % 7 == 0 and n not in skipped and n != 13}
        assert len(retried) == report.retries
        assert 2 == len({r["pid"] for r in rows})  # both workers took batches
        assert [1, 1] == sorted(creations.values())  # one client per worker process
        (failure,) = failures
        assert ("13", "work") == (failure.key, failure.stage)
        assert "Unpicklable: answer does not validate" in failure.error
        assert "raw answer 13" == failure.detail

    def test_a_setup_failing_on_the_workers_stops_the_run_before_any_item(self) -> None:
        """A setup that fails on the workers fails the run with PipelineError before the
        source gives an item, and the runner the pipeline started is closed."""
        taken: list[int] = []

        def source() -> Any:
            for i in range(10):
                taken.append(i)
                yield i

        async def main() -> None:
            runner = ss.DaskRunner(n_workers=1)
            pipeline = ss.Pipeline(
                source, [ss.Stage(dask_jobs.work, setup=dask_jobs.failing_setup, runner=runner)]
            )
            try:
                await pipeline.run()
            finally:
                assert not runner.started  # the pipeline started it, so it closed it

        with pytest.raises(ss.PipelineError, match=r"failed on a worker.*model server is down"):
            asyncio.run(main())
        assert [] == taken

    def test_a_worker_that_dies_fails_its_batch_and_the_rest_carries_on(self) -> None:
        """A worker process that dies mid-batch fails that batch (and at most one more sent
        to it) with an error naming the worker; every other item is processed."""

        async def main() -> ss.RunReport:
            async with ss.DaskRunner(batch_size=5) as runner:
                stage = ss.Stage(dask_jobs.crash_on_five, runner=runner)
                return await asyncio.wait_for(ss.Pipeline(range(40), [stage]).run(), 60)

        report = asyncio.run(main())
        failed = sorted(int(f.key) for f in report.failures)
        assert 5 in failed  # the batch whose item killed its worker is failed, not lost
        assert len(failed) <= 10  # that batch and at most one more in flight to the same worker
        assert 40 == report.ok + report.failed
        assert all("worker" in f.error.lower() for f in report.failures)


class TestArguments:
    def test_bad_runner_arguments(self) -> None:
        """Bad runner arguments, a runner that is not one, and a cache beside a runner are
        refused by name."""
        with pytest.raises(ValueError, match="'batch_size'"):
            ss.DaskRunner(batch_size=0)
        with pytest.raises(TypeError, match="'address'"):
            ss.DaskRunner(address=8786)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'runner'"):
            ss.Stage(abs, runner=object())
        with pytest.raises(ValueError, match="'cache'"):
            ss.Stage(abs, runner=ss.DaskRunner(), cache=ss.Cache())


class TestIdentityOnWorkers:
    def test_workers_see_each_items_identity_and_an_unpicklable_item_fails_alone(self) -> None:
        """current_item() on a worker is the item's own key and source item; an item whose
        source cannot be pickled fails alone with the reason (the whole run hung)."""
        rows: list[Any] = []

        async def sink(batch: list[Any]) -> None:
            rows.extend(batch)

        source: list[dict[str, Any]] = [{"id": i} for i in range(30)]
        source[7]["lock"] = threading.Lock()  # this source item cannot travel

        async def main() -> ss.RunReport:
            async with ss.DaskRunner(n_workers=1, batch_size=8) as runner:
                pipeline = ss.Pipeline(
                    source,
                    [
                        ss.Stage(lambda d: d["id"], name="id"),
                        ss.Stage(dask_jobs.whoami, runner=runner),
                    ],
                    sink,
                    key=lambda d: f"d{d['id']}",
                )
                return await asyncio.wait_for(pipeline.run(), 60)

        report = asyncio.run(main())
        assert (29, 1) == (report.ok, report.failed)
        assert sorted((f"d{i}", i, i) for i in range(30) if i != 7) == sorted(rows)
        ((key, stage, error, _detail),) = (
            (f.key, f.stage, f.error, f.detail) for f in report.failures
        )
        assert ("d7", "whoami") == (key, stage)
        assert error.startswith(
            "TypeError: stage 'whoami' runs on Dask workers, and this item's value or source "
            "item cannot be pickled\n  caused by: TypeError: cannot pickle '_thread.lock' object"
        )


class TestCancellation:
    @pytest.mark.realtime
    def test_a_cancelled_run_with_a_full_queue_to_the_workers_stops(self) -> None:
        """Cancelling a run whose Dask stage lags (its queue of items to send is full) ends
        the run promptly: the pump no longer waits forever to queue its end marker."""

        async def main() -> float:
            async with ss.DaskRunner(n_workers=1, batch_size=2, concurrency_per_worker=1) as r:
                first = asyncio.Event()

                def seen(progress: ss.PipelineProgress) -> None:
                    first.set()

                pipeline = ss.Pipeline(
                    range(200), [ss.Stage(dask_jobs.slow, runner=r)], batch_size=1
                )
                task = asyncio.create_task(pipeline.run(on_progress=seen))
                await asyncio.wait_for(first.wait(), 30)
                await asyncio.sleep(0.1)  # the queue (2 batches' worth) is full by now
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await asyncio.wait_for(task, 20)
                return loop.time() - t0

        assert asyncio.run(main()) < 10
