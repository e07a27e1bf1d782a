"""@cached: how a call is keyed (arguments, names, bound callables) and forgotten."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import pytest

import slipstream as ss

from .helpers import Loader, Run, Schema, Session


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
