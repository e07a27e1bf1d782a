"""ss.Pipeline: stages stream and overlap, setup is hoisted, runs pause and resume, runs report
what they did, and bad arguments are named."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss

from .tables import results_db, rows, to_row

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class TestStreaming:
    def test_items_flow_through_stages_into_the_sink(self, tmp_path: Path, arun: Run) -> None:
        """Every item goes through both stages (one async, one sync in a thread) and reaches
        SQLite in batches, not one commit per row (a real loop: the writer's age deadline
        would fire while the threads work on a virtual clock, and the flush count is the
        point)."""
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

    def test_stage_two_starts_while_stage_one_is_still_producing(self, vrun: Run) -> None:
        """The second stage takes items before the first has finished them all: the stages
        overlap instead of running one after the other."""
        events: list[tuple[str, int]] = []

        async def first(n: int) -> int:
            await asyncio.sleep(0.002)
            events.append(("first", n))
            return n

        async def second(n: int) -> int:
            events.append(("second", n))
            return n

        vrun(ss.Pipeline(range(50), [ss.Stage(first, concurrency=2), ss.Stage(second)]).run())
        first_done = max(i for i, e in enumerate(events) if e[0] == "first")
        second_start = min(i for i, e in enumerate(events) if e[0] == "second")
        assert second_start < first_done  # overlapped, not stage after stage

    def test_setup_runs_once_and_its_result_reaches_every_call(self, vrun: Run) -> None:
        """A stage's setup runs once per run and every call receives the same context."""
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

        report = vrun(ss.Pipeline(range(30), [ss.Stage(add, setup=setup)], sink).run())
        assert [1] == setups
        assert 30 == len(seen)
        assert all(ctx is seen[0] for ctx in seen)
        assert list(range(1000, 1030)) == sorted(out)
        assert 30 == report.ok

    def test_a_failing_setup_stops_the_run_before_any_item(self, vrun: Run) -> None:
        """A setup that raises fails the run with PipelineError naming the stage, before the
        source gives a single item."""
        taken: list[int] = []

        def source() -> Any:
            for i in range(5):
                taken.append(i)
                yield i

        def setup() -> None:
            raise ConnectionRefusedError("endpoint down")

        pipeline = ss.Pipeline(source, [ss.Stage(lambda n, ctx: n, name="s", setup=setup)])
        with pytest.raises(ss.PipelineError, match=r"setup of stage 's' failed.*endpoint down"):
            vrun(pipeline.run())
        assert [] == taken

    def test_keys_are_required_for_items_without_one(self, vrun: Run) -> None:
        """An item with no key attribute that is not a str or int asks for key=."""
        with pytest.raises(TypeError, match="pass key="):
            vrun(ss.Pipeline([{"a": 1}], [ss.Stage(lambda d: d, name="s")]).run())


class TestPauseAndResume:
    def test_pause_drains_commits_and_a_resume_finishes_without_redoing(
        self, tmp_path: Path, vrun: Run
    ) -> None:
        """pause() stops taking items, what was taken is committed, and the next run of the
        same run_id does the rest without processing any item twice."""
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

        first = vrun(pipeline.run())
        assert "paused" == first.state
        assert 50 <= first.ok < 100  # what was in the stages' windows when the pause came
        assert first.ok == len(rows(db))  # everything taken was committed: nothing in limbo
        second = vrun(make().run())
        assert ("finished", first.ok, 300 - first.ok) == (
            second.state,
            second.already_done,
            second.ok,
        )
        assert 300 == len(rows(db))
        assert 300 == len(calls)  # no item was processed twice


class TestReporting:
    def test_client_creations_are_reported(self, vrun: Run) -> None:
        """The clients a setup takes from the registry are counted in the report."""
        registry = ss.Registry()

        async def setup() -> object:
            return await registry.get("llm", lambda: object())

        report = vrun(
            ss.Pipeline(
                range(20),
                [ss.Stage(lambda n, c: n, name="a", setup=setup)],
                registry=registry,
            ).run()
        )
        assert 1 == report.client_creations

    def test_progress_callback_sees_monotone_counts_ending_at_the_total(self, vrun: Run) -> None:
        """on_progress sees the done count grow and its last call reports every item."""
        seen: list[ss.PipelineProgress] = []
        vrun(
            ss.Pipeline(range(100), [ss.Stage(lambda n: n, name="id")], batch_size=7).run(
                on_progress=seen.append
            )
        )
        oks = [p.ok for p in seen]
        assert oks == sorted(oks)
        assert (100, 100) == (seen[-1].ok, seen[-1].total)


class TestArguments:
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
        self, kwargs: dict[str, Any], error: type[Exception], match: str
    ) -> None:
        """A wrong Pipeline argument raises an error that names it."""
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
        self, kwargs: dict[str, Any], error: type[Exception], match: str
    ) -> None:
        """A wrong Stage argument raises an error that names it."""
        with pytest.raises(error, match=match):
            ss.Stage(abs, **kwargs)
