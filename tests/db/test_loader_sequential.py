"""DataLoader: the sequential loop (each load awaited before the next, so every batch holds one
key) is reported once per call site with ss.SequentialLoadWarning; concurrent loads and single
lookups are not (the check itself is in db/sequential.py)."""

from __future__ import annotations

import asyncio
import inspect
import warnings
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import slipstream as ss

Run = Callable[[Coroutine[Any, Any, Any]], Any]


async def by_id(keys: list[int]) -> dict[int, int]:
    await asyncio.sleep(0.001)  # a round trip
    return {k: k * 10 for k in keys}


def here() -> int:
    """The line of the caller (to name the line a test awaits its loads at)."""
    frame = inspect.currentframe()
    assert frame is not None
    assert frame.f_back is not None
    return frame.f_back.f_lineno


@contextmanager
def recorded() -> Iterator[list[warnings.WarningMessage]]:
    """Every SequentialLoadWarning given inside, none turned into an error or filtered."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ss.SequentialLoadWarning)
        yield caught
    caught[:] = [w for w in caught if issubclass(w.category, ss.SequentialLoadWarning)]


class TestSequentialLoop:
    """Loads awaited one at a time from one line of one task: one warning naming that line."""

    def test_a_loop_of_ten_warns_once_at_the_line_that_awaits(self, vrun: Run) -> None:
        """10 sequential loads make 10 batches of one key and one warning, at this file and the
        line of the await, whose message names load_many and gather."""

        async def main() -> int:
            loader = ss.DataLoader(by_id, name="people")
            line = here() + 2
            for user in range(10):
                await loader.load(user)
            assert {1: 10} == loader.statistics().batch_sizes
            return line

        with recorded() as caught:
            line = vrun(main())
        assert 1 == len(caught)
        assert (__file__, line) == (caught[0].filename, caught[0].lineno)
        message = str(caught[0].message)
        assert f"{__file__}:{line}" in message
        assert "'people'" in message
        assert "load_many" in message
        assert "asyncio.gather" in message

    def test_the_same_line_warns_once_per_loader(self, vrun: Run) -> None:
        """40 sequential loads from one line warn once; another line of the same loader warns
        once more; a second loader at the first line warns again."""

        async def walk(loader: ss.DataLoader[int, int], users: range) -> None:
            for user in users:
                await loader.load(user)

        async def main() -> None:
            first = ss.DataLoader(by_id)
            await walk(first, range(30))
            await walk(first, range(30, 40))
            for user in range(100, 110):
                await first.load(user)
            await walk(ss.DataLoader(by_id), range(10))

        with recorded() as caught:
            vrun(main())
        assert 3 == len(caught)
        walk_line = inspect.getsourcelines(walk)[1] + 2
        assert walk_line == caught[0].lineno == caught[2].lineno != caught[1].lineno

    def test_seven_in_a_row_do_not_warn_and_eight_do(self, vrun: Run) -> None:
        """The threshold is 8 one-key batches in a row from one line."""

        async def loop(n: int) -> None:
            loader = ss.DataLoader(by_id)
            for user in range(n):
                await loader.load(user)

        with recorded() as caught:
            vrun(loop(7))
        assert [] == caught
        with recorded() as caught:
            vrun(loop(8))
        assert 1 == len(caught)

    def test_a_loop_through_a_helper_names_the_helper_and_its_caller(self, vrun: Run) -> None:
        """Loads awaited inside a helper called per item are reported at the helper's line,
        "called from" the loop's line."""

        async def main() -> tuple[int, int]:
            loader = ss.DataLoader(by_id)

            async def person(user: int) -> int:
                return await loader.load(user)

            inner = here() - 2
            line = here() + 2
            for user in range(10):
                await person(user)
            return inner, line

        with recorded() as caught:
            inner, line = vrun(main())
        assert [inner] == [w.lineno for w in caught]
        assert f"called from {__file__}:{line}" in str(caught[0].message)

    def test_an_error_filter_raises_the_warning_at_the_load(self, vrun: Run) -> None:
        """With the warning turned into an error, the 8th load of the loop raises
        SequentialLoadWarning at its await, and the loader keeps serving (the key included)."""

        async def main() -> tuple[list[int], list[str], int]:
            loader = ss.DataLoader(by_id)
            values, raised = [], []
            for user in range(10):
                try:
                    values.append(await loader.load(user))
                except ss.SequentialLoadWarning as exc:
                    raised.append(f"{user}: {exc}")
            return values, raised, await loader.load(7)

        with warnings.catch_warnings():
            warnings.simplefilter("error", ss.SequentialLoadWarning)
            values, raised, seventh = vrun(main())
        assert ["7"] == [r.split(":")[0] for r in raised]
        assert "load_many" in raised[0]
        assert [0, 10, 20, 30, 40, 50, 60, 80, 90] == values
        assert 70 == seventh

    def test_a_loop_under_uvloop_warns_too(self) -> None:
        """On uvloop (its own loop, asyncio's tasks and futures) the loop is found the same."""
        uvloop = pytest.importorskip("uvloop")

        async def main() -> None:
            loader = ss.DataLoader(by_id)
            for user in range(10):
                await loader.load(user)

        with recorded() as caught:
            uvloop.run(main())
        assert [__file__] == [w.filename for w in caught]

    def test_the_warning_is_a_user_warning_and_a_slipstream_error(self) -> None:
        """It can be filtered as a UserWarning and caught as a SlipstreamError under -W error."""
        assert issubclass(ss.SequentialLoadWarning, UserWarning)
        assert issubclass(ss.SequentialLoadWarning, ss.SlipstreamError)

    def test_sequential_loads_against_postgresql_warn(self, postgres_url: str, arun: Run) -> None:
        """The report's loop (one asyncpg query per awaited load) warns on a real loop."""
        asyncpg = pytest.importorskip("asyncpg")

        async def main() -> int:
            conn = await asyncpg.connect(postgres_url)
            try:

                async def people(ids: list[int]) -> list[int]:
                    rows = await conn.fetch("SELECT i FROM unnest($1::int[]) AS i", ids)
                    return [r["i"] for r in rows]

                loader = ss.DataLoader(people)
                for user in range(10):
                    assert user == await loader.load(user)
                return loader.statistics().batches
            finally:
                await conn.close()

        with recorded() as caught:
            assert 10 == arun(main())
        assert 1 == len(caught)


class TestNotReported:
    """Concurrent loads, single lookups and loads paced by other waits give no warning."""

    def test_a_gather_of_ten_loads_makes_one_batch_and_no_warning(self, vrun: Run) -> None:
        """gather over 10 loads is one batch of 10 keys."""

        async def main() -> dict[int, int]:
            loader = ss.DataLoader(by_id)
            await asyncio.gather(*(loader.load(user) for user in range(10)))
            await loader.load_many(range(10, 20))
            return loader.statistics().batch_sizes

        with recorded() as caught:
            assert {16: 2} == vrun(main())
        assert [] == caught

    def test_ss_map_over_an_async_function_that_loads_batches(self, vrun: Run) -> None:
        """ss.map over an async function that loads (the recipe's third form) makes batches
        of up to its concurrency and no warning."""

        async def main() -> tuple[list[int], dict[int, int]]:
            people = ss.DataLoader(by_id)

            async def person(user: int) -> int:
                return await people.load(user)

            results = await ss.map(person, range(100), concurrency=20)
            return list(results.values()), people.statistics().batch_sizes

        with recorded() as caught:
            values, sizes = vrun(main())
        assert [u * 10 for u in range(100)] == values
        assert 1 not in sizes
        assert [] == caught

    def test_a_single_lookup_does_not_warn(self, vrun: Run) -> None:
        """One request loading one key makes one batch of one key and no warning."""

        async def main() -> int:
            return await ss.DataLoader(by_id).load(3)

        with recorded() as caught:
            assert 30 == vrun(main())
        assert [] == caught

    def test_requests_served_one_after_another_do_not_warn(self, vrun: Run) -> None:
        """20 requests (tasks) run one after another, each loading one key from the same line
        through one shared loader: each is a single lookup, not a loop."""

        async def main() -> int:
            loader = ss.DataLoader(by_id, cache=False)

            async def request(user: int) -> int:
                return await loader.load(user)

            for user in range(20):
                await asyncio.create_task(request(user))
            return loader.statistics().batches

        with recorded() as caught:
            assert 20 == vrun(main())
        assert [] == caught

    def test_a_worker_paced_by_its_queue_does_not_warn(self, vrun: Run) -> None:
        """A worker that loads one key per message, with messages 50 ms apart and 1 ms batches,
        waits for its input, not for the loader: no warning."""

        async def main() -> None:
            loader = ss.DataLoader(by_id)
            queue: asyncio.Queue[int] = asyncio.Queue()

            async def producer() -> None:
                for user in range(20):
                    await asyncio.sleep(0.05)
                    queue.put_nowait(user)

            feeding = asyncio.create_task(producer())
            for _ in range(20):
                await loader.load(await queue.get())
            await feeding

        with recorded() as caught:
            vrun(main())
        assert [] == caught

    def test_a_loader_with_batch_size_one_does_not_warn(self, vrun: Run) -> None:
        """batch_size=1 asks for one key per batch: a sequential loop over it is not a mistake
        the loader can point out."""

        async def main() -> None:
            loader = ss.DataLoader(by_id, batch_size=1)
            for user in range(10):
                await loader.load(user)

        with recorded() as caught:
            vrun(main())
        assert [] == caught

    def test_cache_hits_make_no_batch_and_no_warning(self, vrun: Run) -> None:
        """A loop over keys already loaded (one batch) is served from the cache."""

        async def main() -> int:
            loader = ss.DataLoader(by_id)
            await loader.load_many(range(10))
            for user in range(10):
                await loader.load(user)
            return loader.statistics().batches

        with recorded() as caught:
            assert 1 == vrun(main())
        assert [] == caught
