"""Pipeline.plan: the makespan, the bottleneck and the advice, from declared or measured
latencies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import slipstream as ss

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class TestPlan:
    def test_plan_names_the_rate_limited_bottleneck_and_advises_concurrency(self) -> None:
        """The plan finds the slowest stage, estimates the makespan from it, and advises the
        concurrency that fills a rate limit, then says the limit is what holds it."""
        pipeline = ss.Pipeline(
            [],
            [
                ss.Stage(abs, name="fetch", concurrency=4, latency_s=0.02),
                ss.Stage(
                    abs, name="llm", concurrency=8, latency_s=0.5, rate=ss.Rate(per_second=50)
                ),
            ],
        )
        plan = pipeline.plan(1000)
        # llm: min(8 / 0.5, 50) = 16/s is the bottleneck; fetch does 200/s
        assert "llm" == plan.bottleneck
        assert 1000 / 16 + 0.52 == pytest.approx(plan.makespan_s)
        llm = plan.stages[1]
        assert 28 == llm.suggested_concurrency  # ceil(50/s * 0.5 s * 1.1): enough to fill it
        assert any("'llm' concurrency from 8 to 28" in a for a in plan.advice)
        faster = ss.Pipeline(
            [],
            [
                ss.Stage(abs, name="fetch", concurrency=4, latency_s=0.02),
                ss.Stage(
                    abs, name="llm", concurrency=28, latency_s=0.5, rate=ss.Rate(per_second=50)
                ),
            ],
        ).plan(1000)
        assert 1000 / 50 + 0.52 == pytest.approx(faster.makespan_s)
        assert any("rate limit" in a for a in faster.advice)
        assert "llm" in str(faster)

    def test_plan_uses_the_last_runs_latency_and_refuses_without_one(self, vrun: Run) -> None:
        """plan() refuses before any run, then uses the last run's measured latency (exact
        on the virtual clock)."""

        async def slow(n: int) -> int:
            await asyncio.sleep(0.01)
            return n

        pipeline = ss.Pipeline(range(8), [ss.Stage(slow, concurrency=8)])
        with pytest.raises(ValueError, match="has no latency"):
            pipeline.plan(10)
        with pytest.raises(ValueError, match="'n_items'"):
            pipeline.plan(-1)
        report = vrun(pipeline.run())
        plan = pipeline.plan(800)
        assert 0.01 <= plan.stages[0].latency_s < 0.5
        assert 0 < report.ideal_s <= report.elapsed_s * 1.5
        assert pytest.approx(0.01) == plan.stages[0].latency_s
