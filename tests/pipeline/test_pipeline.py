"""ss.Pipeline: stages stream, setup is hoisted, nothing is lost or doubled, runs resume."""

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

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def results_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE results (key TEXT PRIMARY KEY, value INTEGER)")
    conn.commit()
    conn.close()
    return path


def rows(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT key, value FROM results").fetchall())
    finally:
        conn.close()


def to_row(n: int) -> dict[str, Any]:
    return {"key": str(n), "value": n * n}


def test_items_flow_through_stages_into_the_sink(tmp_path: Path, arun: Run) -> None:
    db = results_db(tmp_path / "r.sqlite")

    async def double(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    def square_row(n: int) -> dict[str, Any]:  # a sync stage runs in a thread
        return {"key": str(n // 2), "value": n * n}

    pipeline = ss.Pipeline(
        range(250),
        [ss.Stage(double, concurrency=4), ss.Stage(square_row, concurrency=2)],
        ss.sqlite_flush(db, "results", ["key", "value"], conflict=["key"]),
        batch_size=40,
    )
    report = arun(pipeline.run())
    assert {str(i): (2 * i) ** 2 for i in range(250)} == rows(db)
    assert ("finished", 250, 0, 0) == (report.state, report.ok, report.failed, report.skipped)
    assert [250, 250] == [s.calls for s in report.stages]
    assert report.sink_flushes <= 250 // 40 + 2  # batched, not one commit per row
    assert report.db_round_trips == report.sink_flushes  # no checkpoint, no query source


def test_stage_two_starts_while_stage_one_is_still_producing(arun: Run) -> None:
    events: list[tuple[str, int]] = []

    async def first(n: int) -> int:
        await asyncio.sleep(0.002)
        events.append(("first", n))
        return n

    async def second(n: int) -> int:
        events.append(("second", n))
        return n

    arun(ss.Pipeline(range(50), [ss.Stage(first, concurrency=2), ss.Stage(second)]).run())
    first_done = max(i for i, e in enumerate(events) if e[0] == "first")
    second_start = min(i for i, e in enumerate(events) if e[0] == "second")
    assert second_start < first_done  # overlapped, not stage after stage


def test_setup_runs_once_and_its_result_reaches_every_call(arun: Run) -> None:
    setups: list[int] = []
    seen: list[Any] = []

    async def setup() -> dict[str, int]:
        setups.append(1)
        return {"offset": 1000}

    def add(n: int, ctx: dict[str, int]) -> int:
        seen.append(ctx)
        return n + ctx["offset"]

    out: list[int] = []

    async def sink(values: list[int]) -> None:
        out.extend(values)

    report = arun(ss.Pipeline(range(30), [ss.Stage(add, setup=setup)], sink).run())
    assert [1] == setups
    assert 30 == len(seen)
    assert all(ctx is seen[0] for ctx in seen)
    assert list(range(1000, 1030)) == sorted(out)
    assert 30 == report.ok


def test_a_failing_setup_stops_the_run_before_any_item(arun: Run) -> None:
    taken: list[int] = []

    def source() -> Any:
        for i in range(5):
            taken.append(i)
            yield i

    def setup() -> None:
        raise ConnectionRefusedError("endpoint down")

    pipeline = ss.Pipeline(source, [ss.Stage(lambda n, ctx: n, name="s", setup=setup)])
    with pytest.raises(ss.PipelineError, match=r"setup of stage 's' failed.*endpoint down"):
        arun(pipeline.run())
    assert [] == taken


def test_failures_and_skips_are_recorded_and_retry_failed_runs_only_them(
    tmp_path: Path, arun: Run
) -> None:
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

    report, failures, status = arun(first_run())
    assert (13, 3, 4) == (report.ok, report.failed, report.skipped)
    assert ["11", "3", "7"] == [f.key for f in failures]
    assert all(f.stage == "work" for f in failures)
    assert "Unparseable: answer does not validate" == failures[0].error
    assert "raw answer for 11" == failures[0].detail
    assert (13, 3, 4, "finished") == (status.done, status.failed, status.skipped, status.state)

    broken.clear()  # the cause is fixed: retry the failed items alone
    again = arun(make().run(retry_failed=True))
    assert (3, 0, 0) == (again.ok, again.failed, again.skipped)
    assert 3 == again.stages[0].calls  # only the failed items ran
    assert 16 == len(rows(db))
    final = arun(make().run())  # a plain resume has nothing left to do
    assert (0, 20) == (final.ok, final.already_done)


def test_pause_drains_commits_and_a_resume_finishes_without_redoing(
    tmp_path: Path, arun: Run
) -> None:
    db = results_db(tmp_path / "r.sqlite")
    calls: list[int] = []

    async def work(n: int) -> dict[str, Any]:
        calls.append(n)
        if len(calls) == 50:
            # paused from inside the run, by items taken (not by commits, which may lag the
            # stage by the writer's whole buffer on a busy machine): deterministic
            pipeline.pause()
        await asyncio.sleep(0.001)
        return to_row(n)

    def make() -> ss.Pipeline[int]:
        return ss.Pipeline(
            range(300),
            [ss.Stage(work, concurrency=4)],
            ss.sqlite_flush(db, "results", ["key", "value"], conflict=["key"]),
            checkpoint=str(tmp_path / "ckpt.sqlite"),
            run_id="r",
            batch_size=10,
        )

    pipeline = make()

    first = arun(pipeline.run())
    assert "paused" == first.state
    assert 50 <= first.ok < 100  # what was in the stages' windows when the pause came
    assert first.ok == len(rows(db))  # everything taken was committed: nothing in limbo
    second = arun(make().run())
    assert ("finished", first.ok, 300 - first.ok) == (
        second.state,
        second.already_done,
        second.ok,
    )
    assert 300 == len(rows(db))
    assert 300 == len(calls)  # no item was processed twice


def test_bad_rows_at_the_sink_fail_alone(tmp_path: Path, arun: Run) -> None:
    db = tmp_path / "r.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE results (key TEXT PRIMARY KEY, value INTEGER CHECK (value < 50))")
    conn.commit()
    conn.close()
    pipeline = ss.Pipeline(
        range(60),
        [ss.Stage(lambda n: {"key": str(n), "value": n}, name="row")],
        ss.sqlite_flush(db, "results", ["key", "value"]),
        checkpoint=ss.Checkpoint(tmp_path / "c.sqlite"),
        batch_size=16,
    )
    report = arun(pipeline.run())
    assert (50, 10) == (report.ok, report.failed)
    assert {"sink"} == {f.stage for f in report.failures}
    assert 50 == len(rows(db))


def test_a_cached_stage_calls_once_per_cache_key(arun: Run) -> None:
    fetches: list[int] = []

    async def fetch(pair: tuple[int, int]) -> tuple[int, int]:
        fetches.append(pair[0])
        await asyncio.sleep(0.001)
        return pair

    pairs = [(asset, schema) for asset in range(10) for schema in range(3)]
    report = arun(
        ss.Pipeline(
            pairs,
            [ss.Stage(fetch, cache=ss.Cache(), cache_key=lambda p: p[0], concurrency=6)],
            key=lambda p: f"{p[0]}:{p[1]}",
        ).run()
    )
    assert 30 == report.ok
    assert sorted(fetches) == list(range(10))  # one fetch per asset, not per pair


def test_retries_are_counted_and_skip_is_never_retried(arun: Run) -> None:
    attempts: dict[int, int] = {}

    async def flaky(n: int) -> int:
        attempts[n] = attempts.get(n, 0) + 1
        if n == 1:
            raise ss.Skip("empty document")
        if attempts[n] == 1:
            raise ConnectionResetError("transient")
        return n

    retry = ss.Retry(attempts=3, on=Exception, initial_s=0, jitter=False)
    report = arun(ss.Pipeline(range(5), [ss.Stage(flaky, retry=retry)]).run())
    assert (4, 1) == (report.ok, report.skipped)
    assert 4 == report.retries
    assert 1 == attempts[1]


def test_client_creations_are_reported(arun: Run) -> None:
    registry = ss.Registry()

    async def setup() -> object:
        return await registry.get("llm", lambda: object())

    report = arun(
        ss.Pipeline(
            range(20),
            [ss.Stage(lambda n, c: n, name="a", setup=setup)],
            registry=registry,
        ).run()
    )
    assert 1 == report.client_creations


def test_progress_callback_sees_monotone_counts_ending_at_the_total(arun: Run) -> None:
    seen: list[ss.PipelineProgress] = []
    arun(
        ss.Pipeline(range(100), [ss.Stage(lambda n: n, name="id")], batch_size=7).run(
            on_progress=seen.append
        )
    )
    oks = [p.ok for p in seen]
    assert oks == sorted(oks)
    assert (100, 100) == (seen[-1].ok, seen[-1].total)


def test_keys_are_required_for_items_without_one(arun: Run) -> None:
    with pytest.raises(TypeError, match="pass key="):
        arun(ss.Pipeline([{"a": 1}], [ss.Stage(lambda d: d, name="s")]).run())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"stages": [lambda x: x]}, TypeError, "'stages'"),
        ({"stages": [ss.Stage(abs), ss.Stage(abs)]}, ValueError, "distinct names"),
        ({"sink": 3}, TypeError, "'sink'"),
        ({"run_id": ""}, ValueError, "'run_id'"),
        ({"batch_size": 0}, ValueError, "'batch_size'"),
        ({"max_wait_s": -1}, ValueError, "'max_wait_s'"),
        ({"checkpoint": 3}, TypeError, "'checkpoint'"),
    ],
)
def test_bad_pipeline_arguments_name_the_parameter(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    args: dict[str, Any] = {"source": [], "stages": [ss.Stage(abs)]} | kwargs
    with pytest.raises(error, match=match):
        ss.Pipeline(**args)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"concurrency": 0}, ValueError, "'concurrency'"),
        ({"concurrency": 1.5}, TypeError, "'concurrency'"),
        ({"latency_s": 0}, ValueError, "'latency_s'"),
        ({"setup": 3}, TypeError, "'setup'"),
        ({"cache": {}}, TypeError, "'cache'"),
    ],
)
def test_bad_stage_arguments_name_the_parameter(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ss.Stage(abs, **kwargs)


def test_plan_names_the_rate_limited_bottleneck_and_advises_concurrency() -> None:
    pipeline = ss.Pipeline(
        [],
        [
            ss.Stage(abs, name="fetch", concurrency=4, latency_s=0.02),
            ss.Stage(abs, name="llm", concurrency=8, latency_s=0.5, rate=ss.Rate(per_second=50)),
        ],
    )
    plan = pipeline.plan(1000)
    # llm: min(8 / 0.5, 50) = 16/s is the bottleneck; fetch does 200/s
    assert "llm" == plan.bottleneck
    assert 1000 / 16 + 0.52 == pytest.approx(plan.makespan_s)
    llm = plan.stages[1]
    assert 28 == llm.suggested_concurrency  # ceil(50/s * 0.5 s * 1.1): enough to fill the rate
    assert any("'llm' concurrency from 8 to 28" in a for a in plan.advice)
    faster = ss.Pipeline(
        [],
        [
            ss.Stage(abs, name="fetch", concurrency=4, latency_s=0.02),
            ss.Stage(abs, name="llm", concurrency=28, latency_s=0.5, rate=ss.Rate(per_second=50)),
        ],
    ).plan(1000)
    assert 1000 / 50 + 0.52 == pytest.approx(faster.makespan_s)
    assert any("rate limit" in a for a in faster.advice)
    assert "llm" in str(faster)


@pytest.mark.realtime
def test_plan_uses_the_last_runs_latency_and_refuses_without_one(arun: Run) -> None:
    """plan() refuses before any run, then uses the last run's measured latency."""

    async def slow(n: int) -> int:
        await asyncio.sleep(0.01)
        return n

    pipeline = ss.Pipeline(range(8), [ss.Stage(slow, concurrency=8)])
    with pytest.raises(ValueError, match="has no latency"):
        pipeline.plan(10)
    with pytest.raises(ValueError, match="'n_items'"):
        pipeline.plan(-1)
    report = arun(pipeline.run())
    plan = pipeline.plan(800)
    assert 0.01 <= plan.stages[0].latency_s < 0.5  # real time: generous on a busy machine
    assert 0 < report.ideal_s <= report.elapsed_s * 1.5


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(0, 60),
    failing=st.sets(st.integers(0, 59)),
    skipping=st.sets(st.integers(0, 59)),
    batch=st.integers(1, 25),
    concurrency=st.integers(1, 6),
)
def test_every_item_ends_exactly_once_in_one_place(
    tmp_path_factory: pytest.TempPathFactory,
    n: int,
    failing: set[int],
    skipping: set[int],
    batch: int,
    concurrency: int,
) -> None:
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

    report, done, failed, skipped = asyncio.run(main())
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
