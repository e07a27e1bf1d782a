"""RedisAdaptiveRate against the real Redis: one learnt rate shared by several clients."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

import slipstream as ss

from .test_adaptive import _serve_limited
from .test_retry import http_error

pytestmark = [pytest.mark.redis, pytest.mark.realtime]

Run = Callable[[Coroutine[Any, Any, Any]], Any]


async def pair(redis_url: str, **kwargs: Any) -> tuple[Any, ss.RedisAdaptiveRate, Any]:
    """Two limiters on one fresh key, as two processes would hold them."""
    redis = pytest.importorskip("redis.asyncio")
    client = redis.Redis.from_url(redis_url)
    key = f"slipstream-test:{uuid.uuid4()}"
    return (
        client,
        ss.RedisAdaptiveRate(client, key, **kwargs),
        ss.RedisAdaptiveRate(client, key, **kwargs),
    )


class TestRedisAdaptiveRate:
    def test_bad_arguments_name_the_parameter(self) -> None:
        """A wrong client, an empty key or a bad decrease raise naming the parameter."""
        with pytest.raises(TypeError, match="'client'"):
            ss.RedisAdaptiveRate(object(), "k")
        redis = pytest.importorskip("redis.asyncio")
        client = redis.Redis()
        with pytest.raises(ValueError, match="'key'"):
            ss.RedisAdaptiveRate(client, "")
        with pytest.raises(ValueError, match="'decrease'"):
            ss.RedisAdaptiveRate(client, "k", decrease=2)

    def test_a_throttle_in_one_client_slows_the_other(self, arun: Run, redis_url: str) -> None:
        """A 429 reported by one client cuts the rate the other one reads from Redis, once."""

        async def main() -> tuple[float, float]:
            client, a, b = await pair(redis_url, initial_per_s=20, decrease=0.5)
            try:
                await a.acquire()
                a.feedback(http_error(429))
                a.feedback(http_error(429))  # no grant of its own: counted as fresh too
                await a.flush()
                await asyncio.sleep(0.05)  # the background flush lands
                await b.acquire()
                return a.rate_per_s, b.rate_per_s
            finally:
                await a.reset()
                await client.aclose()

        _, seen_by_b = arun(main())
        assert seen_by_b <= 10.0 + 1e-9
        assert seen_by_b >= 2.5 - 1e-9

    def test_retry_after_pauses_the_other_client(self, arun: Run, redis_url: str) -> None:
        """A Retry-After of 0.3 s reported by one client holds the other's next grant."""

        async def main() -> float:
            client, a, b = await pair(redis_url, initial_per_s=100)
            try:
                await a.acquire()
                a.feedback(http_error(429, {"Retry-After": "0.3"}))
                await a.flush()
                return await b.acquire()
            finally:
                await a.reset()
                await client.aclose()

        assert arun(main()) >= 0.2

    def test_successes_raise_the_shared_rate(self, arun: Run, redis_url: str) -> None:
        """Thirty back-to-back successes at 50/s in slow start raise the rate by about 30."""

        async def main() -> float:
            client, a, _ = await pair(redis_url, initial_per_s=50)
            try:
                for _ in range(31):
                    async with a:
                        pass
                await a.flush()
                return a.rate_per_s
            finally:
                await a.reset()
                await client.aclose()

        assert 70 <= arun(main()) <= 81

    def test_two_clients_on_a_real_server(self, arun: Run, redis_url: str) -> None:
        """Two maps, each with its own client on one key, against a real 25/s HTTP server:
        none fails and the server rejects few calls."""
        for url, counts in _serve_limited(limit=25, burst=5):

            async def main(url: str = url) -> list[int]:
                client, a, b = await pair(redis_url, initial_per_s=10)
                try:
                    async with httpx.AsyncClient() as http:

                        async def fetch(_: int) -> int:
                            response = await http.get(url)
                            response.raise_for_status()
                            return response.status_code

                        retry = ss.Retry(attempts=6)
                        runs = await asyncio.gather(
                            ss.map(fetch, range(60), concurrency=8, rate=a, retry=retry),
                            ss.map(fetch, range(60), concurrency=8, rate=b, retry=retry),
                        )
                        return [r.summary.failed for r in runs]
                finally:
                    await a.reset()
                    await client.aclose()

            t0 = time.monotonic()
            assert [0, 0] == arun(main())
            assert 120 == counts["ok"]
            assert counts["rejected"] <= 12
            assert time.monotonic() - t0 < 120 / 25 / 0.5
