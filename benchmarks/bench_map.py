"""Flow-control overhead and guarantees, side by side with the naive code and the peers.

Figures (last line, JSON):
  slipstream_us / gather_semaphore_us / aiometer_us / sequential_us
      CPU microseconds per item for no-op coroutines at concurrency 100 (sequential: the floor).
  *_yield_us   the same when each call yields to the loop once (a realistic await).
  retry_overhead_us / tenacity_us / stamina_us
      added cost per successful call of a retry decorator (3 attempts).
  makespan_ratio
      2,000 calls of 20 ms at concurrency 50 and 400/s: measured / max(ceil(N/C)*L, N/R).
  max_window_over_limit / aiolimiter_window_over_limit
      most starts in any 1 s window at 100/s with burst 1, over (rate + burst).
  breaker_reject_us
      wall microseconds per item refused by an open breaker inside ss.map (goal: far under 1 ms).
  stream_peak_mb / naive_gather_peak_mb
      memory growth while streaming 1,000,000 items / gathering 200,000 tasks at once.

Run: python benchmarks/bench_map.py --quick
"""

from __future__ import annotations

import asyncio
import functools
import gc
import math
import time

from _common import max_in_window, median_of, parse_args, report, rss_mb

import slipstream as ss

CONCURRENCY = 100


async def noop(x: int) -> int:
    return x


async def yielding(x: int) -> int:
    await asyncio.sleep(0)
    return x


def cpu_per_item(n: int, main: object) -> float:
    """CPU microseconds per item of running ``main(fn, items)`` on a fresh loop."""
    gc.collect()
    t0 = time.process_time()
    asyncio.run(main)  # type: ignore[arg-type]
    return (time.process_time() - t0) / n * 1e6


async def run_sequential(fn, n):  # type: ignore[no-untyped-def]
    for x in range(n):
        await fn(x)


async def run_gather_semaphore(fn, n):  # type: ignore[no-untyped-def]
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(x: int) -> int:
        async with sem:
            return await fn(x)

    return await asyncio.gather(*(one(x) for x in range(n)))


async def run_slipstream(fn, n):  # type: ignore[no-untyped-def]
    return await ss.map(fn, range(n), concurrency=CONCURRENCY)


async def run_aiometer(fn, n):  # type: ignore[no-untyped-def]
    import aiometer

    return await aiometer.run_all(
        [functools.partial(fn, x) for x in range(n)], max_at_once=CONCURRENCY
    )


def overhead(n: int, aiometer_n: int, repeats: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    for suffix, fn in (("", noop), ("_yield", yielding)):
        for name, runner, count in (
            ("sequential", run_sequential, n),
            ("gather_semaphore", run_gather_semaphore, n),
            ("slipstream", run_slipstream, n),
            ("aiometer", run_aiometer, aiometer_n),
        ):
            figures[f"{name}{suffix}_us"] = median_of(
                repeats,
                lambda runner=runner, count=count, fn=fn: cpu_per_item(count, runner(fn, count)),
            )
    figures["slipstream_over_gather"] = figures["slipstream_us"] / figures["gather_semaphore_us"]
    figures["slipstream_over_aiometer"] = figures["slipstream_us"] / figures["aiometer_us"]
    return figures


def retry_overhead(n: int, repeats: int) -> dict[str, float]:
    import stamina
    import tenacity

    async def bare() -> int:
        return 1

    decorated = {
        "bare": bare,
        "retry_overhead": ss.retry(attempts=3)(bare),
        "tenacity": tenacity.retry(stop=tenacity.stop_after_attempt(3))(bare),
        "stamina": stamina.retry(on=Exception, attempts=3)(bare),
    }

    async def timed(fn) -> float:  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        for _ in range(n):
            await fn()
        return (time.perf_counter() - t0) / n * 1e6

    per_call = {
        name: median_of(repeats, lambda fn=fn: asyncio.run(timed(fn)))
        for name, fn in decorated.items()
    }
    figures = {
        f"{k}_us": max(0.0, v - per_call["bare"]) for k, v in per_call.items() if k != "bare"
    }
    figures["retry_over_best_peer"] = figures["retry_overhead_us"] / min(
        figures["tenacity_us"], figures["stamina_us"]
    )
    return figures


def makespan(n: int = 2000, concurrency: int = 50, latency_s: float = 0.02, rate: float = 400):
    async def call(x: int) -> int:
        await asyncio.sleep(latency_s)
        return x

    async def main() -> float:
        t0 = time.perf_counter()
        results = await ss.map(
            call, range(n), concurrency=concurrency, rate=ss.Rate(per_second=rate)
        )
        assert results.summary.ok == n
        return time.perf_counter() - t0

    ideal = max(math.ceil(n / concurrency) * latency_s, n / rate)
    measured = asyncio.run(main())
    return {"makespan_s": measured, "makespan_ideal_s": ideal, "makespan_ratio": measured / ideal}


def window(duration_s: float) -> dict[str, float]:
    """Starts in any 1 s window at 100/s burst 1: slipstream against aiolimiter(100, 1)."""
    import aiolimiter

    rate, burst = 100, 1
    n = int(duration_s * rate)

    async def run(acquire) -> list[float]:  # type: ignore[no-untyped-def]
        starts: list[float] = []

        async def one(_: int) -> None:
            await acquire()
            starts.append(time.monotonic())
            await asyncio.sleep(0.001)

        sem = asyncio.Semaphore(50)

        async def bounded(x: int) -> None:
            async with sem:
                await one(x)

        await asyncio.gather(*(bounded(x) for x in range(n)))
        return starts

    async def ours() -> list[float]:
        limiter = ss.RateLimiter(ss.Rate(per_second=rate, burst=burst))
        return await run(limiter.acquire)

    async def theirs() -> list[float]:
        limiter = aiolimiter.AsyncLimiter(rate, 1)
        return await run(limiter.acquire)

    limit = rate + burst
    ours_max = max_in_window(asyncio.run(ours()), 1.0)
    theirs_max = max_in_window(asyncio.run(theirs()), 1.0)
    return {
        "max_window_starts": ours_max,
        "max_window_over_limit": ours_max / limit,
        "aiolimiter_window_starts": theirs_max,
        "aiolimiter_window_over_limit": theirs_max / limit,
    }


def breaker_reject(n: int) -> dict[str, float]:
    """Wall microseconds per item refused by an open breaker inside ss.map."""

    async def down(x: int) -> int:
        raise ConnectionError("down")

    async def main() -> float:
        breaker = ss.CircuitBreaker(failure_threshold=1, reset_timeout_s=3600)
        await ss.map(down, range(1), breaker=breaker)
        t0 = time.perf_counter()
        results = await ss.map(down, range(n), breaker=breaker, concurrency=CONCURRENCY)
        elapsed = time.perf_counter() - t0
        assert results.summary.rejected == n
        return elapsed / n * 1e6

    return {"breaker_reject_us": asyncio.run(main())}


def memory(stream_n: int, gather_n: int) -> dict[str, float]:
    async def streamed() -> float:
        gc.collect()
        base = peak = rss_mb()
        count = 0

        def endless():  # a generator: nothing is materialised
            yield from range(stream_n)

        async with ss.stream(noop, endless(), concurrency=CONCURRENCY) as outcomes:
            async for _ in outcomes:
                count += 1
                if count % 10_000 == 0:
                    peak = max(peak, rss_mb())
        assert count == stream_n
        return peak - base

    async def gathered() -> float:
        gc.collect()
        base = rss_mb()
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one(x: int) -> int:
            async with sem:
                return await yielding(x)

        tasks = [asyncio.ensure_future(one(x)) for x in range(gather_n)]
        peak = rss_mb()
        await asyncio.gather(*tasks)
        return peak - base

    t0 = time.perf_counter()
    stream_mb = asyncio.run(streamed())
    stream_s = time.perf_counter() - t0
    return {
        "stream_items": stream_n,
        "stream_peak_mb": stream_mb,
        "stream_us_per_item": stream_s / stream_n * 1e6,
        "naive_gather_items": gather_n,
        "naive_gather_peak_mb": asyncio.run(gathered()),
    }


def main() -> None:
    args = parse_args(__doc__ or "")
    repeats = args.repeats or (3 if args.quick else 7)
    figures: dict[str, float] = {}
    print("overhead per item (CPU us), concurrency 100 ...")
    figures |= overhead(
        50_000 if args.quick else 100_000, 10_000 if args.quick else 100_000, repeats
    )
    print("retry decorators on the success path ...")
    figures |= retry_overhead(20_000 if args.quick else 200_000, repeats)
    print("makespan: 2,000 x 20 ms at concurrency 50, 400/s ...")
    figures |= makespan()
    print("rate window: 100/s burst 1 ...")
    figures |= window(2.5 if args.quick else 5.0)
    print("breaker: refusing calls while open ...")
    figures |= breaker_reject(50_000)
    print("memory while streaming ...")
    figures |= memory(1_000_000, 200_000)
    report(figures)


if __name__ == "__main__":
    main()
