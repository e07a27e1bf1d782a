"""DataLoader: batching, de-duplication, errors, cancellation, real databases (the exact
dispatch bounds are in test_loader_dispatch.py, prefetch in test_prefetch.py)."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slipstream as ss
from slipstream import testing

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class Recorder:
    """A batch function that records every batch and answers key * 10."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    async def __call__(self, keys: list[int]) -> dict[int, int]:
        self.batches.append(list(keys))
        await asyncio.sleep(0.001)
        return {k: k * 10 for k in keys}


class TestBatching:
    """Loads made while the loop is busy go in one batch, split at batch_size."""

    def test_concurrent_loads_make_one_batch(self, vrun: Run) -> None:
        """100 concurrent loads become one batch_fn call with unique keys."""
        rec = Recorder()

        async def main() -> list[int]:
            loader = ss.DataLoader(rec)
            return await asyncio.gather(*(loader.load(i % 40) for i in range(100)))

        assert [(i % 40) * 10 for i in range(100)] == vrun(main())
        assert [list(range(40))] == rec.batches

    def test_loads_behind_unrelated_awaits_still_join(self, vrun: Run) -> None:
        """Loads behind 0 to 3 unrelated awaits land in the same batch."""
        rec = Recorder()

        async def main() -> None:
            loader = ss.DataLoader(rec)

            async def one(i: int) -> int:
                for _ in range(i % 4):
                    await asyncio.sleep(0)  # unrelated work that yields to the loop
                return await loader.load(i)

            await asyncio.gather(*(one(i) for i in range(100)))

        vrun(main())
        assert 1 == len(rec.batches)

    def test_late_loads_join_under_uvloop(self) -> None:
        """On uvloop (no visible ready queue) loads behind 0-3 awaits still make one batch."""
        uvloop = pytest.importorskip("uvloop")
        rec = Recorder()

        async def main() -> None:
            loader = ss.DataLoader(rec)

            async def one(i: int) -> int:
                for _ in range(i % 4):
                    await asyncio.sleep(0)
                return await loader.load(i)

            await asyncio.gather(*(one(i) for i in range(100)))

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
        assert 1 == len(rec.batches)

    def test_split_at_batch_size(self, vrun: Run) -> None:
        """25 keys with batch_size 10 make batches of 10, 10 and 5."""
        rec = Recorder()

        async def main() -> ss.DataLoaderStatistics:
            loader = ss.DataLoader(rec, batch_size=10)
            await loader.load_many(range(25))
            return loader.statistics()

        stats = vrun(main())
        assert [10, 10, 5] == sorted((len(b) for b in rec.batches), reverse=True)
        assert (3, 25, {8: 1, 16: 2}) == (stats.batches, stats.keys, stats.batch_sizes)

    def test_max_delay_window(self, vrun: Run) -> None:
        """With max_wait_s, a load 5 ms after the first still joins a 10 ms window."""
        rec = Recorder()

        async def main() -> None:
            loader = ss.DataLoader(rec, max_wait_s=0.01)

            async def late() -> int:
                await asyncio.sleep(0.005)
                return await loader.load(2)

            await asyncio.gather(loader.load(1), late())

        vrun(main())
        assert [[1, 2]] == rec.batches

    def test_dedup_without_cache_and_cache_hits(self, vrun: Run) -> None:
        """Keys are de-duplicated within a batch even with cache=False; the cache serves later
        loads without a batch."""
        rec = Recorder()

        async def main() -> tuple[ss.DataLoaderStatistics, ss.DataLoaderStatistics]:
            plain = ss.DataLoader(rec, cache=False)
            await asyncio.gather(plain.load(1), plain.load(1))
            await plain.load(1)
            cached = ss.DataLoader(rec)
            await cached.load(5)
            await cached.load(5)
            return plain.statistics(), cached.statistics()

        plain, cached = vrun(main())
        assert [[1], [1], [5]] == rec.batches
        assert (1, 0) == (plain.deduplicated, plain.cache_hits)
        assert 1 == cached.cache_hits


class TestResults:
    """What each caller gets: values, errors and cancellations, each key's own."""

    def test_list_mapping_missing_and_exception_values(self, vrun: Run) -> None:
        """A list aligns with keys; an exception value fails only its key; a key missing from a
        mapping gives None, or KeyError with missing='raise'."""

        async def as_list(keys: list[int]) -> list[Any]:
            return [ValueError(f"bad {k}") if k == 2 else -k for k in keys]

        async def as_map(keys: list[int]) -> dict[int, int]:
            return {k: k for k in keys if k != 3}

        async def main() -> list[Any]:
            listed = ss.DataLoader(as_list)
            mapped = ss.DataLoader(as_map)
            strict = ss.DataLoader(as_map, missing="raise")
            return [
                await asyncio.gather(*(listed.load(k) for k in (1, 2, 3)), return_exceptions=True),
                await mapped.load_many([1, 3]),
                await asyncio.gather(strict.load(3), return_exceptions=True),
            ]

        listed, mapped, strict = vrun(main())
        assert -1 == listed[0]
        assert isinstance(listed[1], ValueError)
        assert -3 == listed[2]
        assert [1, None] == mapped
        assert isinstance(strict[0], KeyError)

    def test_wrong_length_names_loader_and_counts(self, vrun: Run) -> None:
        """A list of the wrong length fails every key with an error naming both counts."""

        async def short(keys: list[int]) -> list[int]:
            return keys[:-1]

        async def main() -> None:
            loader = ss.DataLoader(short, name="people")
            await loader.load_many([1, 2, 3])

        with pytest.raises(ValueError, match=r"'people'.*2 values for 3 keys"):
            vrun(main())

    def test_errors_are_not_cached(self, vrun: Run) -> None:
        """A batch that raises fails its loads; the next load of the key tries again."""
        calls = []

        async def flaky(keys: list[int]) -> list[int]:
            calls.append(keys)
            if len(calls) == 1:
                raise ConnectionError("db restarting")
            return keys

        async def main() -> int:
            loader = ss.DataLoader(flaky)
            with pytest.raises(ConnectionError):
                await loader.load(1)
            return await loader.load(1)

        assert 1 == vrun(main())
        assert 2 == len(calls)

    def test_cancelled_caller_does_not_poison(self, vrun: Run) -> None:
        """Cancelling one caller leaves the others and later loads with the real value."""
        rec = Recorder()

        async def main() -> list[Any]:
            loader = ss.DataLoader(rec)
            first = asyncio.ensure_future(loader.load(7))
            second = asyncio.ensure_future(loader.load(7))
            await asyncio.sleep(0)
            first.cancel()
            return [await second, await loader.load(7), first.cancelled()]

        assert [70, 70, True] == vrun(main())
        assert 1 == len(rec.batches)

    def test_prime_and_clear(self, vrun: Run) -> None:
        """prime() answers without a batch; clear() forgets."""
        rec = Recorder()

        async def main() -> list[int]:
            loader = ss.DataLoader(rec)
            loader.prime(1, 999)
            a = await loader.load(1)
            loader.clear(1)
            b = await loader.load(1)
            loader.clear()
            return [a, b]

        assert [999, 10] == vrun(main())
        assert [[1]] == rec.batches

    def test_priming_an_exception_is_refused(self, vrun: Run) -> None:
        """prime(key, exc) raises TypeError: errors are never cached, as for batch_fn."""

        async def main() -> int:
            loader = ss.DataLoader(Recorder())
            with pytest.raises(TypeError, match="HINT"):
                loader.prime(1, ValueError("no such row"))
            return await loader.load(1)

        assert 10 == vrun(main())

    def test_not_bound_to_a_loop(self) -> None:
        """A loader made outside any loop works in two successive event loops."""
        rec = Recorder()
        loader = ss.DataLoader(rec, cache=False)

        async def load(key: int) -> int:
            return await loader.load(key)

        assert 10 == asyncio.run(load(1))
        assert 20 == asyncio.run(load(2))

    def test_bad_keys_and_arguments(self, vrun: Run) -> None:
        """Unhashable and mixed-type keys, and bad options, raise clear errors."""

        async def main() -> None:
            loader = ss.DataLoader(Recorder(), name="ids")
            with pytest.raises(TypeError, match="unhashable"):
                await loader.load([1])  # type: ignore[arg-type]
            await loader.load(1)
            with pytest.raises(TypeError, match="mixed key types"):
                await loader.load("1")  # type: ignore[arg-type]

        vrun(main())
        with pytest.raises(ValueError, match="'batch_size'"):
            ss.DataLoader(Recorder(), batch_size=0)
        with pytest.raises(TypeError, match="'batch_fn'"):
            ss.DataLoader(42)  # type: ignore[arg-type]


class TestProperties:
    """Any keys and timings: the right values, in the fewest batches."""

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        keys=st.lists(st.integers(0, 50), min_size=1, max_size=120),
        waits=st.lists(st.integers(0, 3), min_size=120, max_size=120),
        max_batch=st.integers(1, 64),
    )
    def test_right_values_in_the_fewest_batches(
        self, keys: list[int], waits: list[int], max_batch: int
    ) -> None:
        """Any keys, any 0-3 unrelated awaits: every load gets its own value, and the batches
        are exactly ceil(unique keys / batch_size)."""
        rec = Recorder()

        async def main() -> list[int]:
            loader = ss.DataLoader(rec, batch_size=max_batch)

            async def one(i: int, key: int) -> int:
                for _ in range(waits[i]):
                    await asyncio.sleep(0)
                return await loader.load(key)

            return await asyncio.gather(*(one(i, k) for i, k in enumerate(keys)))

        assert [k * 10 for k in keys] == testing.run(main(), virtual_clock=True)
        unique = len(set(keys))
        assert unique == sum(len(b) for b in rec.batches)
        assert math.ceil(unique / max_batch) == len(rec.batches)


def make_people_db(path: Path, n: int) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE org (code TEXT PRIMARY KEY, name TEXT);"
        "CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT, org_code TEXT);"
    )
    conn.executemany("INSERT INTO org VALUES (?, ?)", [(f"o{i}", f"Org {i}") for i in range(10)])
    conn.executemany(
        "INSERT INTO person VALUES (?, ?, ?)", [(i, f"P{i}", f"o{i % 10}") for i in range(n)]
    )
    conn.commit()
    conn.close()


class TestRealDatabases:
    """The lookups against SQLite and PostgreSQL, counted in queries."""

    def test_person_then_organisation_lookup_on_sqlite(self, tmp_path: Path, vrun: Run) -> None:
        """Person then organisation for 200 entries: 2 queries with loaders, not 400."""
        path = tmp_path / "index.sqlite"
        make_people_db(path, 200)
        conn = sqlite3.connect(path)
        queries: list[str] = []
        conn.set_trace_callback(queries.append)

        async def people(ids: list[int]) -> dict[int, tuple[Any, ...]]:
            marks = ",".join("?" * len(ids))
            rows = conn.execute(f"SELECT id, name, org_code FROM person WHERE id IN ({marks})", ids)
            return {r[0]: r for r in rows}

        async def orgs(codes: list[str]) -> dict[str, tuple[Any, ...]]:
            marks = ",".join("?" * len(codes))
            rows = conn.execute(f"SELECT code, name FROM org WHERE code IN ({marks})", codes)
            return {r[0]: r for r in rows}

        async def main() -> list[str]:
            person_loader, org_loader = ss.DataLoader(people), ss.DataLoader(orgs)

            async def validate(person_id: int) -> str:
                person = await person_loader.load(person_id)
                org = await org_loader.load(person[2])
                return f"{person[1]}@{org[1]}"

            return await asyncio.gather(*(validate(i) for i in range(200)))

        result = vrun(main())
        assert "P13@Org 3" == result[13]
        assert 2 == len(queries)

    def test_on_postgresql_with_asyncpg(self, postgres_url: str, arun: Run) -> None:
        """The same lookup against PostgreSQL: one ANY($1) query per level."""
        asyncpg = pytest.importorskip("asyncpg")

        async def main() -> tuple[list[str], int]:
            conn = await asyncpg.connect(postgres_url)
            try:
                await conn.execute(
                    "CREATE TEMP TABLE person (id int PRIMARY KEY, name text, org_code text);"
                    "CREATE TEMP TABLE org (code text PRIMARY KEY, name text)"
                )
                await conn.executemany(
                    "INSERT INTO org VALUES ($1, $2)", [(f"o{i}", f"Org {i}") for i in range(10)]
                )
                await conn.executemany(
                    "INSERT INTO person VALUES ($1, $2, $3)",
                    [(i, f"P{i}", f"o{i % 10}") for i in range(300)],
                )
                queries = [0]

                async def people(ids: list[int]) -> dict[int, Any]:
                    queries[0] += 1
                    rows = await conn.fetch("SELECT * FROM person WHERE id = ANY($1)", ids)
                    return {r["id"]: r for r in rows}

                async def orgs(codes: list[str]) -> dict[str, Any]:
                    queries[0] += 1
                    rows = await conn.fetch("SELECT * FROM org WHERE code = ANY($1)", codes)
                    return {r["code"]: r for r in rows}

                person_loader, org_loader = ss.DataLoader(people), ss.DataLoader(orgs)

                async def validate(person_id: int) -> str:
                    person = await person_loader.load(person_id)
                    org = await org_loader.load(person["org_code"])
                    return f"{person['name']}@{org['name']}"

                names = await asyncio.gather(*(validate(i) for i in range(300)))
                return names, queries[0]
            finally:
                await conn.close()

        names, queries = arun(main())
        assert "P42@Org 2" == names[42]
        assert 2 == queries
