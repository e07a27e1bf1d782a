"""ss.DaskRunner: a stage on a LocalCluster (127.0.0.1) behaves exactly as a local one."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss

pytest.importorskip("distributed")
pytestmark = pytest.mark.realtime

sys.path.insert(0, str(Path(__file__).parent / "workers"))
import dask_jobs  # noqa: E402


def test_a_dask_stage_gives_the_same_outcomes_as_a_local_one(tmp_path: Path) -> None:
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


def test_a_setup_failing_on_the_workers_stops_the_run_before_any_item() -> None:
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


def test_bad_runner_arguments() -> None:
    with pytest.raises(ValueError, match="'batch_size'"):
        ss.DaskRunner(batch_size=0)
    with pytest.raises(TypeError, match="'address'"):
        ss.DaskRunner(address=8786)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'runner'"):
        ss.Stage(abs, runner=object())
    with pytest.raises(ValueError, match="'cache'"):
        ss.Stage(abs, runner=ss.DaskRunner(), cache=ss.Cache())


def test_a_worker_that_dies_fails_its_batch_and_the_rest_carries_on() -> None:
    async def main() -> ss.RunReport:
        async with ss.DaskRunner(batch_size=5) as runner:
            stage = ss.Stage(dask_jobs.crash_on_five, runner=runner)
            return await asyncio.wait_for(ss.Pipeline(range(40), [stage]).run(), 60)

    report = asyncio.run(main())
    failed = sorted(int(key) for key, _, _ in report.failures)
    assert 5 in failed  # the batch whose item killed its worker is failed, not lost
    assert len(failed) <= 10  # that batch and at most one more in flight to the same worker
    assert 40 == report.ok + report.failed
    assert all("worker" in error.lower() for _, _, error in report.failures)
