"""RedisRateLimiter against the real Redis: one budget shared by several processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import pytest

import slipstream as ss

from .test_rate import max_in_window

pytestmark = [pytest.mark.redis, pytest.mark.realtime]

WORKER = """
import asyncio, json, sys, time
import redis.asyncio as redis
import slipstream as ss

async def main(key):
    client = redis.Redis(host="127.0.0.1", port=6379)
    limiter = ss.RedisRateLimiter(client, key, ss.Rate(per_second=40, burst=2))
    starts = []
    async def call(_):
        starts.append(time.time())
    await ss.map(call, range(30), concurrency=4, rate=limiter)
    await client.aclose()
    print(json.dumps(starts))

asyncio.run(main(sys.argv[1]))
"""


class TestRedisRateLimiter:
    def test_two_processes_share_one_budget(self, redis_url: str) -> None:
        """Two processes of 30 calls each at a shared 40/s hold the combined limit."""
        key = f"slipstream-test:{uuid.uuid4()}"
        procs = [
            subprocess.Popen([sys.executable, "-c", WORKER, key], stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        starts: list[float] = []
        for proc in procs:
            out, _ = proc.communicate(timeout=30)
            assert 0 == proc.returncode
            starts += json.loads(out)
        assert 60 == len(starts)
        rate = ss.Rate(per_second=40, burst=2)
        # one grant of tolerance for differing network hops between grant and start
        assert max_in_window([(t, 1.0) for t in starts], rate) <= 1
        # and the budget is really shared: 60 starts at 40/s need about 1.45 s, not 0.7 s
        assert max(starts) - min(starts) >= (60 - 2) / 40 - 0.1

    def test_in_map_with_statistics(self, redis_url: str) -> None:
        """A map drawing from the Redis bucket sees its waits in the summary."""
        redis = pytest.importorskip("redis.asyncio")

        async def main() -> ss.Summary:
            client = redis.Redis.from_url(redis_url)
            limiter = ss.RedisRateLimiter(client, f"slipstream-test:{uuid.uuid4()}", ss.Rate(50))
            try:

                async def call(item: int) -> int:
                    return item

                results = await ss.map(call, range(10), concurrency=10, rate=limiter)
                assert list(range(10)) == results.values()
                assert "acquired=10" in repr(limiter)
                await limiter.reset()
                return results.summary
            finally:
                await client.aclose()

        summary = asyncio.run(main())
        assert summary.rate_wait_s > 9 * 8 / 50 * 0.5  # later items queued behind earlier ones

    def test_bad_arguments(self, redis_url: str) -> None:
        """A non-client, an empty key, a non-Rate raise clear errors."""
        redis = pytest.importorskip("redis.asyncio")
        client = redis.Redis.from_url(redis_url)
        with pytest.raises(TypeError, match="'client'"):
            ss.RedisRateLimiter(object(), "k", ss.Rate(1))
        with pytest.raises(ValueError, match="'key'"):
            ss.RedisRateLimiter(client, "", ss.Rate(1))
        with pytest.raises(TypeError, match="'rate'"):
            ss.RedisRateLimiter(client, "k", 5)  # type: ignore[arg-type]
