"""A cached stage's rate paces the calls it makes, not the items it answers from the cache."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import slipstream as ss

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class Throttled(Exception):
    """What a client raises for a 429 whose server said when to come back."""

    retry_after_s = 0.5


def run_timed(vrun: Run, pipeline: ss.Pipeline[Any]) -> tuple[ss.RunReport, float]:
    async def main() -> tuple[ss.RunReport, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        report = await pipeline.run()
        return report, loop.time() - start

    result: tuple[ss.RunReport, float] = vrun(main())
    return result


class TestCachedStageRate:
    def test_hits_wait_for_no_token(self, vrun: Run) -> None:
        """Ten items with one cache key at 1 call/s: one call, and the run takes no rate wait
        (a rate taken per item would make it nine seconds)."""
        calls: list[str] = []
        rows: list[Any] = []

        async def classify(text: str) -> str:
            calls.append(text)
            return text.upper()

        async def sink(batch: list[Any]) -> None:
            rows.extend(batch)

        pipeline = ss.Pipeline(
            ["same"] * 10,
            [ss.Stage(classify, cache=ss.Cache(), rate=ss.Rate(per_second=1), concurrency=1)],
            sink,
            key=lambda text: id(text),
        )
        report, elapsed_s = run_timed(vrun, pipeline)
        assert (10, 0) == (report.ok, report.failed)
        assert ["same"] == calls
        assert 10 == len(rows)
        assert elapsed_s < 1.0

    def test_misses_still_keep_the_rate(self, vrun: Run) -> None:
        """Five distinct keys at 1 call/s (burst 1), five at once: the fifth call starts four
        seconds after the first."""
        started: list[float] = []

        async def classify(text: str) -> str:
            started.append(asyncio.get_running_loop().time())
            return text

        async def sink(batch: list[Any]) -> None:
            return None

        pipeline = ss.Pipeline(
            [f"t{i}" for i in range(5)],
            [ss.Stage(classify, cache=ss.Cache(), rate=ss.Rate(per_second=1), concurrency=5)],
            sink,
            key=lambda text: text,
        )
        report, _ = run_timed(vrun, pipeline)
        assert 5 == report.ok
        assert 4.0 <= max(started) - min(started) < 4.5

    def test_an_adaptive_rate_hears_the_throttle_of_a_miss(self, vrun: Run) -> None:
        """A 429 on a cached stage's call reaches its AdaptiveRate (one throttle, the rate
        cut), and the stage's retry then succeeds."""
        limiter = ss.AdaptiveRate(initial_per_s=20)
        attempts: list[str] = []

        async def classify(text: str) -> str:
            attempts.append(text)
            if len(attempts) == 1:
                raise Throttled("429")
            return text

        async def sink(batch: list[Any]) -> None:
            return None

        pipeline = ss.Pipeline(
            ["a"],
            [
                ss.Stage(
                    classify,
                    cache=ss.Cache(),
                    rate=limiter,
                    retry=ss.Retry(on=Throttled, attempts=3),
                )
            ],
            sink,
            key=lambda text: text,
        )
        report, _ = run_timed(vrun, pipeline)
        stats = limiter.statistics()
        assert (1, 0) == (report.ok, report.failed)
        assert ["a", "a"] == attempts
        assert (1, 1) == (stats.throttles, stats.successes)
        assert stats.rate_per_s < 20
