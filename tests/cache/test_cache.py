"""Cache in memory: values and TTLs, staleness, bounds and sweeping, invalidation, the sync
API, statistics, and a model check of LRU-with-TTL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slipstream as ss
from slipstream import testing

from .helpers import Loader, Run, entries


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
            before = entries(cache)
            await asyncio.sleep(12)  # nobody touches the cache
            after = entries(cache)
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
                assert entries(cache) <= max_entries

        testing.run(main(), virtual_clock=True)


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
            return entries(cache)

        testing.run(fill(), virtual_clock=True)
        assert 0 == testing.run(idle(), virtual_clock=True)


class TestStatistics:
    def test_unknown_sizes_say_so(self, tmp_path: Any) -> None:
        """A SQLite cache reports entries and bytes as None (unknown), not -1."""
        stats = ss.Cache(sqlite_path=tmp_path / "c.sqlite").statistics()
        assert (None, None) == (stats.entries, stats.bytes)
        assert "entries=?" in repr(ss.Cache(sqlite_path=tmp_path / "d.sqlite"))
