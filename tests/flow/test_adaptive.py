"""AdaptiveRate: AIMD on a token bucket, fed by ss.map, converging on a server's limit."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slipstream as ss
from slipstream import testing

from .test_retry import http_error

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class TooMany(Exception):
    """A throttle as a client library might raise it: 429 with the server's delay."""

    status = 429

    def __init__(self, retry_after_s: float | None) -> None:
        super().__init__("429 Too Many Requests")
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s


class Server:
    """A server admitting ``limit`` calls a second with a burst of ``burst`` (GCRA on the loop's
    clock); a call over the limit raises ``TooMany`` with the seconds until the next slot."""

    def __init__(self, limit: float, burst: float = 5, retry_after: bool = True) -> None:
        self.interval = 1.0 / limit
        self.burst = burst
        self.retry_after = retry_after
        self.tat = -math.inf
        self.ok: list[float] = []
        self.rejected = 0

    async def __call__(self, item: object) -> object:
        now = asyncio.get_running_loop().time()
        await asyncio.sleep(0.005)  # a round trip
        allow_at = max(self.tat, now) - (self.burst - 1) * self.interval
        if now + 1e-9 < allow_at:
            self.rejected += 1
            raise TooMany(allow_at - now if self.retry_after else None)
        self.tat = max(self.tat, now) + self.interval
        self.ok.append(now)
        return item


class TestArguments:
    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"initial_per_s": 0}, "initial_per_s"),
            ({"min_per_s": 0}, "min_per_s"),
            ({"max_per_s": -1}, "max_per_s"),
            ({"min_per_s": 5, "max_per_s": 2, "initial_per_s": 3}, "max_per_s"),
            ({"initial_per_s": 100, "max_per_s": 50}, "initial_per_s"),
            ({"decrease": 1.0}, "decrease"),
            ({"decrease": 0}, "decrease"),
            ({"increase_per_s": -1}, "increase_per_s"),
            ({"burst": 0.5}, "burst"),
            ({"max_retry_after_s": 0}, "max_retry_after_s"),
        ],
    )
    def test_bad_values_name_the_parameter(self, kwargs: dict[str, float], name: str) -> None:
        """Each out-of-range argument raises ValueError naming it."""
        with pytest.raises(ValueError, match=f"'{name}'"):
            ss.AdaptiveRate(**kwargs)

    def test_wrong_types(self) -> None:
        """A string rate or a non-bool slow_start raises TypeError naming the parameter."""
        with pytest.raises(TypeError, match="'initial_per_s'"):
            ss.AdaptiveRate("10")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'slow_start'"):
            ss.AdaptiveRate(slow_start=1)  # type: ignore[arg-type]

    def test_weight_over_burst_is_refused(self, vrun: Run) -> None:
        """A weight the bucket can never hold raises at once, naming 'weight'."""
        with pytest.raises(ValueError, match="'weight'"):
            vrun(ss.AdaptiveRate(burst=2).acquire(3))


class TestClassification:
    @pytest.mark.parametrize(
        ("exc", "throttle", "delay"),
        [
            (http_error(429, {"Retry-After": "2"}), True, 2.0),
            (http_error(503), True, None),
            (http_error(500), False, None),
            (TooMany(0.5), True, 0.5),
            (ConnectionResetError(), False, None),
        ],
    )
    def test_throttles(self, exc: BaseException, throttle: bool, delay: float | None) -> None:
        """429/503 (httpx, aiohttp-like .status) or a retry_after_s attribute is a throttle."""
        from slipstream._impl.flow.adaptive import throttle_of

        assert (throttle, delay) == throttle_of(exc)


class TestAimd:
    def test_slow_start_doubles_then_a_throttle_cuts(self, vrun: Run) -> None:
        """At 10/s a second of successes doubles the rate (the first call, from a full bucket,
        does not count: the rate was no bottleneck yet); a 429 then multiplies it by 0.5."""

        async def main() -> tuple[float, float]:
            limiter = ss.AdaptiveRate(initial_per_s=10, decrease=0.5)
            for _ in range(11):
                await limiter.acquire()
                limiter.feedback(None)
            doubled = limiter.rate_per_s
            await limiter.acquire()
            limiter.feedback(http_error(429))
            return doubled, limiter.rate_per_s

        doubled, cut = vrun(main())
        assert 20.0 == pytest.approx(doubled)
        assert 10.0 == pytest.approx(cut)

    def test_additive_increase_after_the_first_throttle(self, vrun: Run) -> None:
        """After a cut, a second's worth of successes adds about increase_per_s (each adds
        increase_per_s / rate, and the rate grows on the way)."""

        async def main() -> float:
            limiter = ss.AdaptiveRate(initial_per_s=20, decrease=0.5, increase_per_s=2)
            await limiter.acquire()
            limiter.feedback(http_error(429))  # 10/s, out of slow start
            for _ in range(10):
                await limiter.acquire()
                limiter.feedback(None)
            return limiter.rate_per_s

        assert 11.8 <= vrun(main()) <= 12.0

    def test_stale_throttles_cut_once(self, vrun: Run) -> None:
        """Four calls granted at one rate that all come back 429 cut the rate once, not four
        times: the later three were sent before the cut."""
        limiter = ss.AdaptiveRate(initial_per_s=40, burst=4, decrease=0.5)

        async def call(_: int) -> None:
            await limiter.acquire()
            await asyncio.sleep(0.1)
            limiter.feedback(http_error(429))

        async def main() -> None:
            await asyncio.gather(*(call(i) for i in range(4)))

        vrun(main())
        s = limiter.statistics()
        assert (4, 1, 20.0) == (s.throttles, s.decreases, s.rate_per_s)

    def test_retry_after_pauses_everyone(self, vrun: Run) -> None:
        """A 429 with Retry-After: 3 holds every caller's next grant until 3 s later."""
        limiter = ss.AdaptiveRate(initial_per_s=100)

        async def main() -> list[float]:
            loop = asyncio.get_running_loop()
            await limiter.acquire()
            limiter.feedback(http_error(429, {"Retry-After": "3"}))
            assert 3.0 == pytest.approx(limiter.statistics().paused_s)
            starts: list[float] = []

            async def one() -> None:
                await limiter.acquire()
                starts.append(loop.time())

            await asyncio.gather(*(one() for _ in range(3)))
            return starts

        starts = vrun(main())
        assert min(starts) >= 3.0 - 1e-6
        assert max(starts) - min(starts) == pytest.approx(2 / 70, abs=1e-3)  # paced at 70/s

    def test_floor_and_ceiling(self, vrun: Run) -> None:
        """Throttles stop at min_per_s, successes at max_per_s."""

        async def main() -> tuple[float, float]:
            low = ss.AdaptiveRate(initial_per_s=2, min_per_s=1, decrease=0.1)
            for _ in range(3):
                await low.acquire()
                low.feedback(http_error(503))
            high = ss.AdaptiveRate(initial_per_s=10, max_per_s=12)
            for _ in range(30):
                await high.acquire()
                high.feedback(None)
            return low.rate_per_s, high.rate_per_s

        assert (1.0, 12.0) == vrun(main())

    def test_other_errors_change_nothing(self, vrun: Run) -> None:
        """A 500 or a bug neither raises nor cuts the rate."""

        async def main() -> ss.AdaptiveRateStatistics:
            limiter = ss.AdaptiveRate(initial_per_s=10)
            for exc in (http_error(500), ValueError("bug"), ConnectionResetError()):
                await limiter.acquire()
                limiter.feedback(exc)
            return limiter.statistics()

        s = vrun(main())
        assert (10.0, 0, 0) == (s.rate_per_s, s.throttles, s.successes)

    def test_no_increase_when_not_the_bottleneck(self, vrun: Run) -> None:
        """A client calling once every 2 s at 10/s gains nothing from its successes."""

        async def main() -> float:
            limiter = ss.AdaptiveRate(initial_per_s=10)
            for _ in range(5):
                await limiter.acquire()
                limiter.feedback(None)
                await asyncio.sleep(2)
            return limiter.rate_per_s

        assert 10.0 == vrun(main())

    def test_async_with_reports_by_itself(self, vrun: Run) -> None:
        """`async with limiter:` reports a success, and a 429 raised inside it."""

        async def main() -> ss.AdaptiveRateStatistics:
            limiter = ss.AdaptiveRate(initial_per_s=10)
            async with limiter:
                pass
            with pytest.raises(httpx.HTTPStatusError):
                async with limiter:
                    raise http_error(429)
            return limiter.statistics()

        s = vrun(main())
        assert (1, 1, 1) == (s.successes, s.throttles, s.decreases)

    def test_for_key_has_its_own_rate(self, vrun: Run) -> None:
        """Two keys learn separately; the same key gives the same limiter."""
        limiter = ss.AdaptiveRate(initial_per_s=10, decrease=0.5)
        a, b = limiter.for_key("a"), limiter.for_key("b")
        assert a is limiter.for_key("a")

        async def main() -> None:
            await a.acquire()
            a.feedback(http_error(429))

        vrun(main())
        assert (5.0, 10.0, 10.0) == (a.rate_per_s, b.rate_per_s, limiter.rate_per_s)

    def test_testing_mode_skips_waits(self, vrun: Run) -> None:
        """In test mode acquire returns at once."""

        async def main() -> float:
            limiter = ss.AdaptiveRate(initial_per_s=1)
            with testing.no_waits():
                return sum([await limiter.acquire() for _ in range(5)])

        assert 0.0 == vrun(main())


class TestInMap:
    def test_converges_on_the_server_limit(self, vrun: Run) -> None:
        """300 calls against a 25/s server: none fails, goodput is >= 0.85 of the limit, and
        the rate ends near the limit."""
        server = Server(limit=25)
        limiter = ss.AdaptiveRate(initial_per_s=10)

        async def main() -> tuple[ss.Results[int, object], float]:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            results = await ss.map(
                server, range(300), concurrency=16, rate=limiter, retry=ss.Retry(attempts=6)
            )
            return results, loop.time() - t0

        results, elapsed = vrun(main())
        assert 0 == results.summary.failed
        goodput = 300 / elapsed / 25
        assert goodput >= 0.85
        assert 15 <= limiter.rate_per_s <= 32
        assert server.rejected / 300 < 0.05

    def test_without_it_the_same_map_fails(self, vrun: Run) -> None:
        """The same map with no rate spends its retries and fails items: what it fixes."""
        server = Server(limit=25, retry_after=False)

        async def main() -> ss.Results[int, object]:
            return await ss.map(server, range(150), concurrency=16, retry=ss.Retry(attempts=6))

        assert vrun(main()).summary.failed > 0

    def test_shared_by_two_maps(self, vrun: Run) -> None:
        """Two maps at once on one limiter together stay near the server's limit, no failure."""
        server = Server(limit=25)
        limiter = ss.AdaptiveRate(initial_per_s=10)

        retry = ss.Retry(attempts=6)

        async def main() -> list[int]:
            runs = await asyncio.gather(
                *(
                    ss.map(server, range(150), concurrency=8, rate=limiter, retry=retry)
                    for _ in range(2)
                )
            )
            return [r.summary.failed for r in runs]

        assert [0, 0] == vrun(main())
        assert server.rejected / 300 < 0.05
        assert limiter.statistics().acquired >= 300


class TestProperties:
    events = st.lists(
        st.one_of(
            st.just("ok"),
            st.just("429"),
            st.tuples(st.just("429-after"), st.floats(0.01, 5)),
            st.tuples(st.just("sleep"), st.floats(0, 3)),
        ),
        max_size=60,
    )

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        events=events,
        initial=st.floats(0.5, 200),
        decrease=st.floats(0.1, 0.9),
        burst=st.sampled_from([1.0, 3.0]),
    )
    def test_invariants(
        self, events: list[Any], initial: float, decrease: float, burst: float
    ) -> None:
        """Whatever the server answers: the rate stays in [min, max]; every throttle of a call
        granted since the last cut lowers it (unless at the floor); nothing raises it while
        paused; the bucket never goes below zero."""
        lo, hi = 0.5, 200.0

        async def main() -> None:
            loop = asyncio.get_running_loop()
            limiter = ss.AdaptiveRate(
                initial_per_s=initial, min_per_s=lo, max_per_s=hi, decrease=decrease, burst=burst
            )
            for event in events:
                kind = event if isinstance(event, str) else event[0]
                if kind == "sleep":
                    await asyncio.sleep(event[1])
                    continue
                await limiter.acquire()
                assert limiter.statistics().available >= -1e-9
                before = limiter.rate_per_s
                paused = limiter.statistics().paused_s > 0
                if kind == "ok":
                    limiter.feedback(None)
                    if paused:
                        assert limiter.rate_per_s <= before
                elif kind == "429":
                    limiter.feedback(http_error(429))
                    assert limiter.rate_per_s < before or before == lo
                else:
                    limiter.feedback(TooMany(event[1]))
                    assert limiter.rate_per_s < before or before == lo
                    assert limiter.statistics().paused_s == pytest.approx(event[1])
                assert lo <= limiter.rate_per_s <= hi
                assert loop.time() >= 0

        testing.run(main(), virtual_clock=True)


# -- a real HTTP server on 127.0.0.1 that answers 429 over 25/s ---------------------------------


def _serve_limited(limit: float, burst: float) -> Iterator[tuple[str, dict[str, int]]]:
    """Serve HTTP/1.1 on 127.0.0.1 in a thread: 200 within ``limit``/s (GCRA, ``burst``),
    else 429 with a fractional Retry-After; yields the URL and its counters."""
    counts = {"ok": 0, "rejected": 0}
    state = {"tat": 0.0}
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                now = time.monotonic()
                tat = max(state["tat"], now)
                allow_at = tat - (burst - 1) / limit
                if now < allow_at:
                    counts["rejected"] += 1
                    head = f"HTTP/1.1 429 Too Many\r\nRetry-After: {allow_at - now:.3f}\r\n"
                else:
                    state["tat"] = tat + 1 / limit
                    counts["ok"] += 1
                    head = "HTTP/1.1 200 OK\r\n"
                writer.write(f"{head}Content-Length: 2\r\n\r\nok".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        box["port"] = server.sockets[0].getsockname()[1]
        box["stop"] = stop = asyncio.Event()
        box["loop"] = asyncio.get_running_loop()
        ready.set()
        async with server:
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield f"http://127.0.0.1:{box['port']}/", counts
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(5)


@pytest.fixture
def limited_server() -> Iterator[tuple[str, dict[str, int]]]:
    yield from _serve_limited(limit=25, burst=5)


@pytest.mark.realtime
class TestRealHttp:
    def test_httpx_through_map_loses_nothing(
        self, arun: Run, limited_server: tuple[str, dict[str, int]]
    ) -> None:
        """150 httpx calls to a real 25/s server: 0 failed, goodput >= 0.7 of the limit."""
        url, counts = limited_server

        async def main() -> tuple[ss.Results[int, str], float]:
            limiter = ss.AdaptiveRate(initial_per_s=10)
            async with httpx.AsyncClient() as client:

                async def fetch(_: int) -> str:
                    response = await client.get(url)
                    response.raise_for_status()
                    return response.text

                t0 = time.monotonic()
                results = await ss.map(
                    fetch, range(150), concurrency=16, rate=limiter, retry=ss.Retry(attempts=6)
                )
                return results, time.monotonic() - t0

        results, elapsed = arun(main())
        assert 0 == results.summary.failed
        assert 150 == counts["ok"]
        goodput = 150 / elapsed / 25
        assert goodput >= 0.7, f"goodput {goodput:.2f} of the limit"
        assert counts["rejected"] <= 15
