"""Cache hit cost and stampede behaviour, side by side with async-lru, cashews, aiocache and
cachetools, plus SQLite and Redis hits.

Figures (last line, JSON):
  hit_us / async_lru_us / cashews_us / aiocache_us
      wall microseconds per cached call of an async function (memory), one argument.
  sync_hit_us / cachetools_us    the same for a sync function (cachetools TTLCache + lock).
  bare_async_us / bare_sync_us   the uncached call: the floor.
  stampede_calls (+ peers)       loader calls for 1,000 concurrent misses of one key (10 ms).
  stampede_cancel_collateral (+ async-lru)
      of 1,000 waiters, cancel 100 mid-flight: how many of the other 900 saw CancelledError.
  sqlite_hit_us / redis_hit_us   a cached call served from a SQLite file / from Redis.

Run: python benchmarks/bench_cache.py --quick
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
import time
from pathlib import Path

from _common import median_of, parse_args, report

import slipstream as ss


def per_call_async(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    async def main() -> float:
        await fn(1)  # fill
        t0 = time.perf_counter()
        for _ in range(n):
            await fn(1)
        return (time.perf_counter() - t0) / n * 1e6

    return asyncio.run(main())


def per_call_sync(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    fn(1)
    t0 = time.perf_counter()
    for _ in range(n):
        fn(1)
    return (time.perf_counter() - t0) / n * 1e6


def hits(n: int, repeats: int) -> dict[str, float]:
    import cachetools
    from aiocache import Cache as AioCache
    from aiocache import cached as aio_cached
    from async_lru import alru_cache
    from cashews import cache as cashews

    cashews.setup("mem://", size=10_000)

    async def bare(x: int) -> int:
        return x

    def bare_sync(x: int) -> int:
        return x

    contenders = {
        "bare_async_us": bare,
        "hit_us": ss.cached(ttl_s=600, max_entries=10_000)(bare),
        "async_lru_us": alru_cache(maxsize=10_000, ttl=600)(bare),
        "cashews_us": cashews(ttl="10m")(bare),
        "aiocache_us": aio_cached(ttl=600, cache=AioCache.MEMORY)(bare),
    }
    figures = {
        name: median_of(repeats, lambda fn=fn: per_call_async(fn, n))
        for name, fn in contenders.items()
    }
    lock = threading.Lock()
    sync_contenders = {
        "bare_sync_us": bare_sync,
        "sync_hit_us": ss.cached(ttl_s=600, max_entries=10_000)(bare_sync),
        "cachetools_us": cachetools.cached(cachetools.TTLCache(10_000, 600), lock=lock)(bare_sync),
    }
    figures |= {
        name: median_of(repeats, lambda fn=fn: per_call_sync(fn, n))
        for name, fn in sync_contenders.items()
    }
    figures["hit_over_async_lru"] = figures["hit_us"] / figures["async_lru_us"]
    figures["cashews_over_hit"] = figures["cashews_us"] / figures["hit_us"]
    figures["aiocache_over_hit"] = figures["aiocache_us"] / figures["hit_us"]
    figures["sync_hit_over_cachetools"] = figures["sync_hit_us"] / figures["cachetools_us"]
    return figures


def stampede() -> dict[str, float]:
    from aiocache import Cache as AioCache
    from aiocache import cached as aio_cached
    from async_lru import alru_cache
    from cashews import cache as cashews

    def counting():  # type: ignore[no-untyped-def]
        calls = [0]

        async def load(x: int) -> int:
            calls[0] += 1
            await asyncio.sleep(0.01)
            return x

        return calls, load

    def storm(wrap) -> int:  # type: ignore[no-untyped-def]
        calls, load = counting()
        fn = wrap(load)

        async def main() -> None:
            await asyncio.gather(*(fn(7) for _ in range(1000)))

        asyncio.run(main())
        return calls[0]

    def collateral(wrap) -> int:  # type: ignore[no-untyped-def]
        _, load = counting()
        fn = wrap(load)

        async def main() -> int:
            tasks = [asyncio.create_task(fn(7)) for _ in range(1000)]
            await asyncio.sleep(0.005)
            for task in tasks[:100]:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            return sum(isinstance(r, asyncio.CancelledError) for r in results[100:])

        return asyncio.run(main())

    cashews.setup("mem://", size=10_000)
    ours = lambda f: ss.cached(ttl_s=600)(f)  # noqa: E731
    alru = lambda f: alru_cache(maxsize=100, ttl=600)(f)  # noqa: E731
    return {
        "stampede_calls": storm(ours),
        "async_lru_stampede_calls": storm(alru),
        "cashews_stampede_calls": storm(lambda f: cashews(ttl="10m")(f)),
        "aiocache_stampede_calls": storm(lambda f: aio_cached(ttl=600, cache=AioCache.MEMORY)(f)),
        "stampede_cancel_collateral": collateral(ours),
        "async_lru_cancel_collateral": collateral(alru),
    }


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def backends(n: int, repeats: int) -> dict[str, float]:
    async def bare(x: int) -> int:
        return x

    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:

        def sqlite_run() -> float:
            async def main() -> float:
                async with ss.Cache(sqlite_path=Path(tmp) / "c.sqlite", ttl_s=600) as cache:
                    fn = ss.cached(cache)(bare)
                    await fn(1)
                    t0 = time.perf_counter()
                    for _ in range(n):
                        await fn(1)
                    return (time.perf_counter() - t0) / n * 1e6

            return asyncio.run(main())

        figures["sqlite_hit_us"] = median_of(repeats, sqlite_run)
    if redis_up():
        import redis.asyncio as redis

        def redis_run() -> float:
            async def main() -> float:
                client = redis.Redis(host="127.0.0.1", port=6379)
                cache = ss.Cache(redis=client, ttl_s=600, namespace="bench")
                fn = ss.cached(cache)(bare)
                await fn(1)
                t0 = time.perf_counter()
                for _ in range(n):
                    await fn(1)
                elapsed = (time.perf_counter() - t0) / n * 1e6
                await cache.clear()
                await client.aclose()
                return elapsed

            return asyncio.run(main())

        figures["redis_hit_us"] = median_of(repeats, redis_run)
    else:
        print("  (Redis is not running on 127.0.0.1:6379: redis_hit_us left out)")
    return figures


def main() -> None:
    args = parse_args(__doc__ or "")
    repeats = args.repeats or (3 if args.quick else 7)
    figures: dict[str, float] = {}
    print("hits ...")
    figures |= hits(50_000 if args.quick else 200_000, repeats)
    print("stampede ...")
    figures |= stampede()
    print("SQLite and Redis hits ...")
    figures |= backends(2_000 if args.quick else 10_000, repeats)
    report(figures)


if __name__ == "__main__":
    main()
