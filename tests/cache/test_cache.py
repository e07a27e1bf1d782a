"""Cache and @cached in memory: single flight, TTL, bounds, keys, staleness, invalidation."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slipstream as ss
from slipstream import testing

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class Loader:
    """An async loader that counts calls, takes `delay_s`, and can fail."""

    def __init__(self, delay_s: float = 0.01, fail: bool = False) -> None:
        self.calls = 0
        self.cancelled = 0
        self.delay_s = delay_s
        self.fail = fail

    async def __call__(self, x: Any = 1) -> Any:
        self.calls += 1
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.fail:
            raise ConnectionError(f"backend down for {x}")
        return ("value", x, self.calls)


class TestSingleFlight:
    def test_thousand_concurrent_misses_one_computation(self, vrun: Run) -> None:
        """1,000 concurrent misses of one key run the loader once and all get its value."""
        loader = Loader()
        fn = ss.cached(ttl_s=60)(loader.__call__)

        async def main() -> set[Any]:
            return set(await asyncio.gather(*(fn(7) for _ in range(1000))))

        assert {("value", 7, 1)} == vrun(main())
        assert 1 == loader.calls
        assert 999 == fn.cache.statistics().joins  # type: ignore[attr-defined]

    def test_cancelling_some_waiters_spares_the_others(self, vrun: Run) -> None:
        """Cancelling 10% of the waiters mid-flight leaves the computation and the rest alone."""
        loader = Loader(delay_s=1.0)
        fn = ss.cached(ttl_s=60)(loader.__call__)

        async def main() -> list[Any]:
            tasks = [asyncio.create_task(fn(1)) for _ in range(100)]
            await asyncio.sleep(0.5)
            for task in tasks[:10]:
                task.cancel()
            return await asyncio.gather(*tasks, return_exceptions=True)

        results = vrun(main())
        assert 10 == sum(isinstance(r, asyncio.CancelledError) for r in results)
        assert 90 == results.count(("value", 1, 1))
        assert (1, 0) == (loader.calls, loader.cancelled)

    def test_last_waiter_leaving_cancels_the_computation(self, vrun: Run) -> None:
        """When every waiter is cancelled, the computation is cancelled too, and not cached."""
        loader = Loader(delay_s=1.0)
        fn = ss.cached(ttl_s=60)(loader.__call__)

        async def main() -> Any:
            tasks = [asyncio.create_task(fn(1)) for _ in range(3)]
            await asyncio.sleep(0.1)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0)
            return await fn(1)

        assert ("value", 1, 2) == vrun(main())
        assert 1 == loader.cancelled

    def test_failure_reaches_all_waiters_and_is_not_cached(self, vrun: Run) -> None:
        """A failing loader's error goes to every waiter; the next call computes again."""
        loader = Loader(fail=True)
        fn = ss.cached(ttl_s=60)(loader.__call__)

        async def main() -> list[Any]:
            first = await asyncio.gather(*(fn(1) for _ in range(5)), return_exceptions=True)
            second = await asyncio.gather(fn(1), return_exceptions=True)
            return first + second

        results = vrun(main())
        assert all(isinstance(r, ConnectionError) for r in results)
        assert 2 == loader.calls


class TestValues:
    def test_none_is_a_value(self, vrun: Run) -> None:
        """A loader that returns None is cached like any value."""
        calls = []

        @ss.cached(ttl_s=60)
        async def lookup(x: int) -> None:
            calls.append(x)

        async def main() -> list[None]:
            return [await lookup(1), await lookup(1)]

        assert [None, None] == vrun(main())
        assert [1] == calls

    def test_negative_ttl_caches_errors_for_a_while(self, vrun: Run) -> None:
        """With negative_ttl_s the same error is raised without calling, until it expires."""
        loader = Loader(fail=True)
        cache = ss.Cache(ttl_s=60, negative_ttl_s=5)
        fn = ss.cached(cache)(loader.__call__)

        async def main() -> int:
            for _ in range(3):
                with pytest.raises(ConnectionError):
                    await fn(1)
            await asyncio.sleep(6)
            with pytest.raises(ConnectionError):
                await fn(1)
            return loader.calls

        assert 2 == vrun(main())

    def test_ttl_expiry(self, vrun: Run) -> None:
        """An entry is served until its TTL, then computed again."""
        loader = Loader(delay_s=0)
        fn = ss.cached(ttl_s=10)(loader.__call__)

        async def main() -> list[Any]:
            a = await fn(1)
            await asyncio.sleep(9)
            b = await fn(1)
            await asyncio.sleep(2)
            return [a, b, await fn(1)]

        a, b, c = vrun(main())
        assert a == b
        assert c != a

    def test_stale_while_revalidate(self, vrun: Run) -> None:
        """A stale entry is served at once while one background refresh replaces it."""
        loader = Loader(delay_s=1)
        cache = ss.Cache(ttl_s=10, stale_ttl_s=100, stale_while_revalidate=True)
        fn = ss.cached(cache)(loader.__call__)

        async def main() -> list[Any]:
            first = await fn(1)
            await asyncio.sleep(11)
            t0 = asyncio.get_running_loop().time()
            stale = await asyncio.gather(*(fn(1) for _ in range(20)))
            served_in = asyncio.get_running_loop().time() - t0
            await asyncio.sleep(2)
            return [first, stale, served_in, await fn(1)]

        first, stale, served_in, fresh = vrun(main())
        assert all(s == first for s in stale)
        assert 0.0 == served_in
        assert ("value", 1, 2) == fresh
        assert 2 == loader.calls
        assert 20 == cache.statistics().stale_hits

    def test_stale_on_error(self, vrun: Run) -> None:
        """When the refresh of an expired entry fails, the stale value is served."""
        loader = Loader(delay_s=0)
        cache = ss.Cache(ttl_s=10, stale_ttl_s=100, stale_on_error=True)
        fn = ss.cached(cache)(loader.__call__)

        async def main() -> tuple[Any, Any]:
            first = await fn(1)
            await asyncio.sleep(11)
            loader.fail = True
            return first, await fn(1)

        first, second = vrun(main())
        assert first == second
        assert 2 == loader.calls


@dataclasses.dataclass(frozen=True)
class Schema:
    name: str
    fields: tuple[str, ...]


class Session:
    """A database session: its repr is an address, so it cannot be part of a key."""


class TestKeys:
    def test_dataclass_and_kwargs_arguments(self, vrun: Run) -> None:
        """Equal dataclasses share an entry; keyword order does not matter; 1 and True differ."""
        calls: list[Any] = []

        @ss.cached(ttl_s=60)
        async def classify(asset: int, schema: Schema, *, strict: Any = False) -> int:
            calls.append((asset, schema, strict))
            return len(calls)

        async def main() -> list[int]:
            s1, s2 = Schema("a", ("x",)), Schema("a", ("x",))
            return [
                await classify(1, s1, strict=1),
                await classify(1, s2, strict=1),
                await classify(1, s1, strict=True),
                await classify(asset=1, schema=s1, strict=1),
                await classify(schema=s1, asset=1, strict=1),
            ]

        assert [1, 1, 2, 3, 3] == vrun(main())

    def test_unencodable_argument_is_named(self, vrun: Run) -> None:
        """An argument whose only text is an address raises TypeError naming it."""

        @ss.cached(ttl_s=60)
        async def load(session: Session, asset_id: int) -> int:
            return asset_id

        with pytest.raises(TypeError, match="'session'"):
            vrun(load(Session(), 1))

    def test_exclude_and_key(self, vrun: Run) -> None:
        """exclude= leaves a runtime argument out; key= chooses what identifies a call."""
        calls = []

        @ss.cached(ttl_s=60, exclude=["session"])
        async def load(session: Session, asset_id: int) -> int:
            calls.append(asset_id)
            return asset_id

        @ss.cached(ttl_s=60, key=lambda client, url, **_: url)
        async def fetch(client: Session, url: str, retries: int = 1) -> str:
            calls.append(url)
            return url

        async def main() -> None:
            await load(Session(), 1)
            await load(Session(), 1)
            await fetch(Session(), "u", retries=2)
            await fetch(Session(), "u", retries=3)

        vrun(main())
        assert [1, "u"] == calls

    def test_exclude_unknown_parameter(self) -> None:
        """exclude= naming no parameter is a ValueError naming it."""
        with pytest.raises(ValueError, match="sesion"):
            ss.cached(exclude=["sesion"])(lambda session: None)

    def test_methods(self, vrun: Run) -> None:
        """A method caches per instance when the instance has a key, or across with exclude."""

        class Repo:
            def __init__(self, tenant: str) -> None:
                self.tenant = tenant
                self.calls = 0

            def __slipstream_key__(self) -> str:
                return self.tenant

            @ss.cached(ttl_s=60)
            async def count(self, kind: str) -> tuple[str, str]:
                self.calls += 1
                return self.tenant, kind

        async def main() -> list[Any]:
            a, b = Repo("a"), Repo("b")
            return [await a.count("x"), await a.count("x"), await b.count("x"), a.calls]

        assert [("a", "x"), ("a", "x"), ("b", "x"), 1] == vrun(main())

    def test_version_orphans_old_entries(self, vrun: Run) -> None:
        """Two versions of a function in one cache do not share entries."""
        cache = ss.Cache(ttl_s=60)

        async def v1(x: int) -> str:
            return "v1"

        async def v2(x: int) -> str:
            return "v2"

        v2.__qualname__ = v1.__qualname__
        f1 = ss.cached(cache, version=1)(v1)
        f2 = ss.cached(cache, version=2)(v2)

        async def main() -> list[str]:
            return [await f1(1), await f2(1)]

        assert ["v1", "v2"] == vrun(main())


class TestBoundsAndInvalidation:
    def test_lru_eviction(self, vrun: Run) -> None:
        """Beyond max_entries the least recently used entry goes first."""
        cache = ss.Cache(ttl_s=60, max_entries=3)

        async def main() -> list[Any]:
            for k in "abc":
                await cache.set(k, k)
            await cache.get("a")
            await cache.set("d", "d")
            return [await cache.get(k) for k in "abcd"]

        assert ["a", None, "c", "d"] == vrun(main())
        assert 1 == cache.statistics().evictions

    def test_max_bytes(self, vrun: Run) -> None:
        """The summed size of values stays within max_bytes."""
        cache = ss.Cache(ttl_s=60, max_bytes=100)

        async def main() -> ss.CacheStatistics:
            for i in range(20):
                await cache.set(i, b"x" * 30)
            return cache.statistics()

        stats = vrun(main())
        assert stats.bytes <= 100
        assert 3 == stats.entries

    def test_sweep_frees_memory_without_writes(self, vrun: Run) -> None:
        """Expired entries are swept by the timer even when nobody reads or writes."""
        cache = ss.Cache(ttl_s=1, sweep_interval_s=5)

        async def main() -> list[int]:
            for i in range(1000):
                await cache.set(i, i)
            await cache.get_or_load("start the timer", Loader(0))
            before = len(cache.memory)  # type: ignore[arg-type]
            await asyncio.sleep(12)  # nobody touches the cache
            after = len(cache.memory)  # type: ignore[arg-type]
            await cache.aclose()
            return [before, after]

        assert [1001, 0] == vrun(main())

    def test_namespace_tag_and_key_invalidation(self, vrun: Run) -> None:
        """invalidate() by key, namespace and tag removes exactly those entries."""
        cache = ss.Cache(ttl_s=60)

        async def main() -> list[Any]:
            await cache.set("a", 1, tags=["asset:1"])
            await cache.set("b", 2, tags=["asset:1", "asset:2"])
            await cache.set("c", 3, namespace="schemas")
            await cache.set("d", 4)
            removed = [
                await cache.invalidate(tag="asset:1"),
                await cache.invalidate(namespace="schemas"),
                await cache.invalidate("d"),
            ]
            left = [await cache.get(k) for k in "abcd"] + [
                await cache.get("c", namespace="schemas")
            ]
            return removed + left

        assert [2, 1, 1, None, None, None, None, None] == vrun(main())

    def test_invalidate_needs_one_target(self, vrun: Run) -> None:
        """invalidate() with no target or two targets is a TypeError."""
        cache = ss.Cache()
        with pytest.raises(TypeError, match="exactly one"):
            vrun(cache.invalidate())
        with pytest.raises(TypeError, match="exactly one"):
            cache.invalidate_sync("a", tag="t")

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"ttl_s": 0}, "ttl_s"),
            ({"ttl_s": -5}, "ttl_s"),
            ({"negative_ttl_s": 0}, "negative_ttl_s"),
            ({"max_entries": 0}, "max_entries"),
            ({"stale_while_revalidate": True}, "stale_ttl_s"),
            ({"serializer": "yaml"}, "serializer"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, Any], name: str) -> None:
        """Bad options raise ValueError naming the parameter."""
        with pytest.raises(ValueError, match=name):
            ss.Cache(**kwargs)

    def test_bad_decorator_use(self) -> None:
        """A bare @ss.cached gets a hint; a non-positive ttl is named."""
        with pytest.raises(TypeError, match="HINT"):
            ss.cached(lambda x: x)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="'ttl_s'"):
            ss.cached(ttl_s=0)


class TestSync:
    def test_sync_function_single_flight_across_threads(self) -> None:
        """20 threads missing one key together run the sync function once: the load is held
        until the other 19 have joined its flight (counted), so they overlap for certain."""
        calls = []
        release = threading.Event()
        start = threading.Barrier(20)

        @ss.cached(ttl_s=60)
        def slow(x: int) -> int:
            calls.append(x)
            assert release.wait(10)
            return x * 2

        def caller() -> None:
            start.wait()
            results.append(slow(4))

        results: list[int] = []
        threads = [threading.Thread(target=caller) for _ in range(20)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while slow.cache.statistics().joins < 19 and time.monotonic() < deadline:
            time.sleep(0.001)
        stats = slow.cache.statistics()
        release.set()
        for t in threads:
            t.join()
        assert (1, 19) == (stats.misses, stats.joins)
        assert [8] * 20 == results
        assert [4] == calls

    def test_sync_api(self) -> None:
        """get_or_load_sync, set_sync, get_sync and invalidate_sync work without a loop."""
        cache = ss.Cache(ttl_s=60)
        assert 5 == cache.get_or_load_sync("k", lambda: 5)
        assert 5 == cache.get_or_load_sync("k", lambda: 6)
        cache.set_sync("n", None)
        assert cache.get_sync("n", "missing") is None
        assert 1 == cache.invalidate_sync("k")
        assert "missing" == cache.get_sync("k", "missing")
        assert "hits=2" in repr(cache)


class TestProperties:
    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        ops=st.lists(
            st.tuples(st.sampled_from(["get", "set", "sleep"]), st.integers(0, 15)), max_size=80
        ),
        max_entries=st.integers(1, 8),
        ttl=st.sampled_from([1.0, 5.0]),
    )
    def test_matches_a_model(
        self, ops: list[tuple[str, int]], max_entries: int, ttl: float
    ) -> None:
        """Any sequence of gets, sets and sleeps behaves like a simple LRU-with-TTL model and
        never holds more than max_entries."""
        cache = ss.Cache(ttl_s=ttl, max_entries=max_entries)
        model: dict[int, tuple[int, float]] = {}  # key -> (value, expires); dict order = LRU

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for n, (op, k) in enumerate(ops):
                now = loop.time()
                if op == "sleep":
                    await asyncio.sleep(k / 10)
                elif op == "set":
                    await cache.set(k, n)
                    model.pop(k, None)
                    model[k] = (n, now + ttl)
                    while len(model) > max_entries:
                        del model[next(iter(model))]
                else:
                    got = await cache.get(k, "miss")
                    want = "miss"
                    if k in model and now < model[k][1]:
                        want = model.pop(k)
                        model[k] = want
                        want = want[0]
                    elif k in model:
                        del model[k]
                    assert want == got
                assert len(cache.memory) <= max_entries  # type: ignore[arg-type]

        testing.run(main(), virtual_clock=True)


class TestLoops:
    def test_module_level_cache_across_event_loops(self) -> None:
        """A decorated function keeps working across asyncio.run calls, even when a loop
        closed while a computation was in flight."""
        calls = []

        @ss.cached(ttl_s=60)
        async def slow(x: int) -> int:
            calls.append(x)
            await asyncio.sleep(0.05)
            return x

        async def abandon() -> None:
            asyncio.get_running_loop().create_task(slow(1))
            await asyncio.sleep(0.01)  # the loop closes with slow(1) in flight

        asyncio.run(abandon())
        assert 1 == asyncio.run(slow(1))
        assert 1 == asyncio.run(slow(1))
        assert [1, 1] == calls
        assert 1 / 3 == pytest.approx(slow.cache.statistics().hit_ratio)  # type: ignore[attr-defined]


class TestAbandonedFlights:
    """A caller that was never cancelled never gets CancelledError."""

    @pytest.mark.parametrize("via", ["get_or_load", "cached"])
    def test_a_caller_one_step_after_the_last_waiter_left_starts_afresh(
        self, vrun: Run, via: str
    ) -> None:
        """The last waiter is cancelled (so the load is); a caller arriving in the very next
        loop step, before the load's done-callback ran, gets a fresh load's value."""
        loader = Loader(delay_s=1.0)
        cache = ss.Cache(ttl_s=60)
        fn = ss.cached(cache)(loader.__call__)

        def call() -> Any:
            if via == "cached":
                return fn(7)
            return cache.get_or_load(7, lambda: loader(7))

        async def main() -> Any:
            first = asyncio.create_task(call())
            await asyncio.sleep(0)  # the load is in flight, `first` waits on it
            first.cancel()
            second = asyncio.create_task(call())  # runs right after first's cancellation
            with pytest.raises(asyncio.CancelledError):
                await first
            return await second

        assert ("value", 7, 2) == vrun(main())
        assert (2, 1) == (loader.calls, loader.cancelled)


class TestSweepTimer:
    def test_the_sweep_timer_is_armed_again_on_a_new_loop(self) -> None:
        """A module-level cache used under one event loop, then another, still sweeps expired
        entries on a timer under the second loop, with no one writing."""
        cache = ss.Cache(ttl_s=5, sweep_interval_s=10)

        async def fill() -> None:
            for i in range(100):
                await cache.get_or_load(i, lambda i=i: asyncio.sleep(0, i))  # type: ignore[misc]

        async def idle() -> int:
            await cache.get_or_load("x", lambda: asyncio.sleep(0, "x"))
            await asyncio.sleep(60)  # no reads, no writes: only the timer can sweep
            return len(cache.memory)  # type: ignore[arg-type]

        testing.run(fill(), virtual_clock=True)
        assert 0 == testing.run(idle(), virtual_clock=True)


class TestPerCallInvalidation:
    def test_invalidate_one_call(self, vrun: Run) -> None:
        """fn.invalidate(*args) removes that call's entry only; the next call recomputes."""
        loader = Loader()
        fn = ss.cached(ttl_s=60)(loader.__call__)

        async def main() -> tuple[int, int, int]:
            await fn(1)
            await fn(2)
            removed = await fn.invalidate(1)
            again = await fn.invalidate(1)
            await fn(1)
            await fn(2)
            return removed, again, loader.calls

        assert (1, 0, 3) == vrun(main())

    def test_invalidate_sync_with_kwargs_and_a_dataclass(self) -> None:
        """The sync twin, on a key encoded from keyword and dataclass arguments."""
        calls = []

        @ss.cached(ttl_s=60)
        def label(text: str, *, schema: Schema) -> str:
            calls.append(text)
            return text.upper()

        s = Schema("a", ("x",))
        label("x", schema=s)
        assert 1 == label.invalidate_sync("x", schema=s)
        label("x", schema=s)
        assert ["x", "x"] == calls

    def test_invalidate_on_sqlite(self, tmp_path: Any, arun: Run) -> None:
        """Per-call invalidation works on a persistent store too."""
        cache = ss.Cache(sqlite_path=tmp_path / "c.sqlite", ttl_s=60)
        calls = []

        @ss.cached(cache)
        async def fn(x: int) -> int:
            calls.append(x)
            return x

        async def main() -> int:
            await fn(1)
            removed = await fn.invalidate(1)
            await fn(1)
            await cache.aclose()
            return removed

        assert 1 == arun(main())
        assert [1, 1] == calls


class TestOddCallables:
    """@cached derives a stable name without requiring __qualname__."""

    def test_partial_arguments_are_part_of_the_identity(self) -> None:
        """partial(f, 1) and partial(f, 2) on one cache never share an entry."""
        calls = []

        def add(a: int, b: int) -> int:
            calls.append((a, b))
            return a + b

        cache = ss.Cache(ttl_s=60)
        one, two = (
            ss.cached(cache)(functools.partial(add, 1)),
            ss.cached(cache)(functools.partial(add, 2)),
        )
        assert (6, 7, 6) == (one(5), two(5), one(5))
        assert [(1, 5), (2, 5)] == calls
        assert 1 == one.invalidate_sync(5)

    def test_callable_objects_and_bound_methods(self, vrun: Run) -> None:
        """Two instances' bound methods (or the instances themselves) keep separate entries."""
        cache = ss.Cache(ttl_s=60)

        @dataclasses.dataclass
        class Scaler:
            k: int

            async def __call__(self, x: int) -> int:
                return self.k * x

            def scale(self, x: int) -> int:
                return self.k * x

        async def main() -> list[int]:
            a, b = ss.cached(cache)(Scaler(2)), ss.cached(cache)(Scaler(3))
            return [await a(5), await b(5)]

        assert [10, 15] == vrun(main())
        m2, m3 = ss.cached(cache)(Scaler(2).scale), ss.cached(cache)(Scaler(3).scale)
        assert (10, 15) == (m2(5), m3(5))

    def test_mocks(self, vrun: Run) -> None:
        """Mock and AsyncMock are cached like functions (no AttributeError: __qualname__)."""
        from unittest import mock

        sync_mock = mock.Mock(return_value=3)
        async_mock = mock.AsyncMock(return_value=4)
        cached_sync, cached_async = ss.cached()(sync_mock), ss.cached()(async_mock)
        assert (3, 3) == (cached_sync(1), cached_sync(1))

        async def main() -> tuple[int, int]:
            return await cached_async(1), await cached_async(1)

        assert (4, 4) == vrun(main())
        assert (1, 1) == (sync_mock.call_count, async_mock.await_count)

    def test_partialmethod(self) -> None:
        """A partialmethod is cached per instance and per bound argument."""
        calls = []

        @dataclasses.dataclass
        class Doc:
            id: int

            def render(self, scale: int, x: int) -> int:
                calls.append((self.id, scale, x))
                return self.id * scale * x

            tenfold = ss.cached(ttl_s=60)(functools.partialmethod(render, 10))

        assert (10, 20, 10) == (Doc(1).tenfold(1), Doc(2).tenfold(1), Doc(1).tenfold(1))
        assert [(1, 10, 1), (2, 10, 1)] == calls

    def test_an_unencodable_bound_object_is_refused_for_a_persistent_cache(
        self, tmp_path: Any
    ) -> None:
        """A callable object with only an address for text cannot be keyed across processes:
        TypeError with a HINT at decoration, not a silent miss every run."""

        class Anonymous:
            def __call__(self, x: int) -> int:
                return x

        with pytest.raises(TypeError, match="HINT"):
            ss.cached(ss.Cache(sqlite_path=tmp_path / "c.sqlite"))(Anonymous())
        assert 5 == ss.cached()(Anonymous())(5)  # in memory: a token of this wrapper

    def test_generators_are_refused(self) -> None:
        """A generator function has no result to keep: TypeError with a HINT."""

        def rows() -> Any:
            yield 1

        with pytest.raises(TypeError, match="HINT"):
            ss.cached()(rows)


class TestStatistics:
    def test_joins_are_not_misses(self, vrun: Run) -> None:
        """1,000 concurrent lookups of one key: one miss (the load) and 999 joins."""
        loader = Loader()
        fn = ss.cached(ttl_s=60)(loader.__call__)

        async def main() -> None:
            await asyncio.gather(*(fn(7) for _ in range(1000)))
            await fn(7)

        vrun(main())
        stats = fn.cache.statistics()
        assert (1, 999, 1) == (stats.misses, stats.joins, stats.hits)

    def test_sync_joins_are_not_misses(self) -> None:
        """The same across threads."""
        gate = threading.Event()
        fn = ss.cached(ttl_s=60)(lambda x: gate.wait(5) and x)
        threads = [threading.Thread(target=fn, args=(1,)) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        gate.set()
        for t in threads:
            t.join()
        stats = fn.cache.statistics()
        assert (1, 7) == (stats.misses, stats.joins)

    def test_unknown_sizes_say_so(self, tmp_path: Any) -> None:
        """A SQLite cache reports entries and bytes as None (unknown), not -1."""
        stats = ss.Cache(sqlite_path=tmp_path / "c.sqlite").statistics()
        assert (None, None) == (stats.entries, stats.bytes)
        assert "entries=?" in repr(ss.Cache(sqlite_path=tmp_path / "d.sqlite"))
