"""Checked by mypy (make typecheck), not run: the public API keeps its types for users."""

from __future__ import annotations

from typing import assert_type

import slipstream as ss


async def fetch(x: int) -> str:
    return str(x)


def halve(x: int) -> float:
    return x / 2


async def check() -> None:
    results = await ss.map(fetch, [1, 2], concurrency=4, rate=ss.Rate(per_second=5))
    assert_type(results, ss.Results[int, str])
    assert_type(results.values(), list[str])
    assert_type((await ss.map(halve, range(3))).values(), list[float])
    async for outcome in ss.stream(fetch, [1], ordered=True, buffer=2):
        assert_type(outcome, ss.Outcome[int, str])
        assert_type(outcome.value, str)

    @ss.retry(attempts=2)
    async def wrapped(url: str) -> bytes:
        return url.encode()

    assert_type(await wrapped("x"), bytes)

    pipeline = ss.Pipeline(range(3), [ss.Stage(fetch, concurrency=2)], key=str)
    assert_type(pipeline, ss.Pipeline[int])
    assert_type(await pipeline.run(retry_failed=False), ss.RunReport)
    assert_type(pipeline.plan(10), ss.Plan)
    async with ss.Checkpoint("c.sqlite") as cp:
        assert_type(await cp.keys("run", "done"), set[str])
