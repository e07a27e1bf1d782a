"""``stream_chunks``: a stream over an async generator of lists (how a pipeline's stages hand
items on), its inbox, its pull protocol and its bound."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import slipstream as ss
from slipstream import testing
from slipstream._impl.flow.map import stream_chunks

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]


async def chunks_of(
    items: list[int], asked: list[int | None], fail_at: int | None = None
) -> AsyncGenerator[list[int], None]:
    """The pipeline's protocol: an empty list first, then at most what the consumer sends."""
    want: int | None = yield []
    i = 0
    while i < len(items):
        asked.append(want)
        n = want or 4
        chunk = items[i : i + n]
        i += n
        if fail_at is not None and i > fail_at:
            raise LookupError("the input broke")
        want = yield chunk


class TestStreamChunks:
    def test_every_item_gives_one_outcome_and_each_pull_asks_for_the_room_left(
        self, vrun: Run[Any]
    ) -> None:
        """100 items through 4 workers (ahead 8): 100 outcomes, each once, and no pull asks
        for more than concurrency + buffer."""
        asked: list[int | None] = []

        async def double(x: int) -> int:
            await asyncio.sleep(0.01 * (x % 3))
            return x * 2

        async def main() -> list[int]:
            values: list[int] = []
            async with stream_chunks(
                double, chunks_of(list(range(100)), asked), concurrency=4, buffer=4
            ) as s:
                while True:
                    try:
                        batch = await s.next_batch(3)
                    except StopAsyncIteration:
                        break
                    assert 1 <= len(batch) <= 3
                    values += [o.value for o in batch]
            return values

        assert sorted(vrun(main())) == [x * 2 for x in range(100)]
        assert asked
        assert all(a is not None and 1 <= a <= 8 for a in asked)

    def test_a_stalled_consumer_bounds_what_is_taken(self, vrun: Run[Any]) -> None:
        """Nobody consumes: the stream holds at most concurrency + buffer items, inbox
        included, however many the input has."""
        pulled: list[int] = []

        async def source() -> AsyncGenerator[list[int], None]:
            want: int | None = yield []
            n = 0
            while True:
                chunk = list(range(n, n + (want or 50)))
                n += len(chunk)
                pulled.extend(chunk)
                want = yield chunk

        async def ident(x: int) -> int:
            return x

        async def main() -> int:
            async with stream_chunks(ident, source(), concurrency=2, buffer=3) as s:
                await s.next_batch(1)  # start it; then stall
                await asyncio.sleep(1)
                return len(pulled)

        assert vrun(main()) <= 1 + 5

    def test_the_input_raising_is_an_input_error_after_what_it_gave(self, vrun: Run[Any]) -> None:
        """The generator raises after 8 items: those 8 come out, then InputError."""
        asked: list[int | None] = []

        async def ident(x: int) -> int:
            return x

        values: list[int] = []

        async def main() -> None:
            async with stream_chunks(
                ident, chunks_of(list(range(20)), asked, fail_at=8), concurrency=4
            ) as s:
                while True:
                    values.extend(o.value for o in await s.next_batch())

        with pytest.raises(ss.InputError):
            vrun(main())
        assert sorted(values) == list(range(8))

    def test_workers_waiting_for_a_pull_all_finish_at_the_end(self, vrun: Run[Any]) -> None:
        """Eight workers, three items: the five that find nothing wake when the input ends,
        and the stream ends (no worker is left waiting)."""

        async def ident(x: int) -> int:
            await asyncio.sleep(0.1)
            return x

        async def main() -> list[int]:
            values: list[int] = []
            async with stream_chunks(ident, chunks_of([1, 2, 3], []), concurrency=8) as s:
                while True:
                    try:
                        values += [o.value for o in await s.next_batch()]
                    except StopAsyncIteration:
                        return values

        assert sorted(vrun(main())) == [1, 2, 3]

    def test_a_failing_call_is_an_outcome_with_its_exception(self, vrun: Run[Any]) -> None:
        """A call that raises gives an outcome carrying the exception, never a lost item."""

        async def odd_fails(x: int) -> int:
            if x % 2:
                raise ValueError(x)
            return x

        async def main() -> tuple[list[int], list[int]]:
            ok: list[int] = []
            bad: list[int] = []
            async with stream_chunks(odd_fails, chunks_of(list(range(10)), [])) as s:
                while True:
                    try:
                        batch = await s.next_batch()
                    except StopAsyncIteration:
                        return ok, bad
                    for o in batch:
                        if o.error is None:
                            ok.append(o.value)
                        else:
                            assert isinstance(o.error, ValueError)
                            bad.append(o.item)

        ok, bad = vrun(main())
        assert (sorted(ok), sorted(bad)) == ([0, 2, 4, 6, 8], [1, 3, 5, 7, 9])

    def test_calls_that_wait_run_concurrency_at_once(self, vrun: Run[Any]) -> None:
        """Calls that each wait for 4 of them to be in flight (a barrier) get through: the
        workers the pull and the room leave idle are woken, up to ``concurrency``; with 3
        allowed the barrier never fills and the call times out."""

        async def run(concurrency: int) -> list[Any]:
            barrier = asyncio.Barrier(4)

            async def meet(x: int) -> int:
                async with asyncio.timeout(5):
                    await barrier.wait()
                return x

            got: list[Any] = []
            async with stream_chunks(
                meet, chunks_of(list(range(8)), []), concurrency=concurrency
            ) as s:
                while True:
                    try:
                        got += [o.error or o.value for o in await s.next_batch()]
                    except StopAsyncIteration:
                        return got

        assert sorted(vrun(run(4))) == list(range(8))
        assert all(isinstance(x, TimeoutError) for x in vrun(run(3))[:3])

    def test_a_worker_pulls_the_next_list_while_the_others_call(self, vrun: Run[Any]) -> None:
        """Lists of 2 arrive every 10 ms and each call takes 1 s: with 8 workers all 8 items
        are in flight within 50 ms and the stream ends at about 1.04 s (were the next pull to
        wait for a worker to finish its call, it would take 4 s)."""

        async def trickle() -> AsyncGenerator[list[int], None]:
            yield []
            for i in range(0, 8, 2):
                await asyncio.sleep(0.01)
                yield [i, i + 1]

        async def slow(x: int) -> int:
            await asyncio.sleep(1)
            return x

        async def main() -> tuple[list[int], float]:
            loop = asyncio.get_running_loop()
            start = loop.time()
            got: list[int] = []
            async with stream_chunks(slow, trickle(), concurrency=8) as s:
                while True:
                    try:
                        got += [o.value for o in await s.next_batch()]
                    except StopAsyncIteration:
                        return got, loop.time() - start

        got, elapsed = vrun(main())
        assert sorted(got) == list(range(8))
        assert elapsed < 1.1


class TestInvariants:
    @example(seed=4250, shape=(2, 0))  # found it: a single outcome taken woke no puller
    @settings(max_examples=60, deadline=None)
    @given(
        seed=st.integers(0, 10_000),
        shape=st.sampled_from([(1, 0), (1, 1), (2, 0), (3, 1), (4, 4)]),
    )
    def test_the_bound_no_idle_worker_and_one_outcome_each(
        self, seed: int, shape: tuple[int, int]
    ) -> None:
        """Random arrivals, call times and consumer pauses (virtual clock): every item comes
        out once; the stage never holds more than concurrency + buffer (inbox included) and
        never asks for more than its room; no worker waits two checks in a row while there is
        room and work (items in the inbox, or items upstream and nobody pulling)."""
        concurrency, buffer = shape
        rnd = random.Random(seed)
        n = 30
        arrivals = sorted(rnd.choice([0, 0, 1, 2, 3, 7]) + i * rnd.choice([0, 1]) for i in range(n))
        calls = {i: rnd.choice([None, 0, 1, 2, 5]) for i in range(n)}
        available: list[int] = []
        problems: list[str] = []
        state: dict[str, Any] = {"done": False}

        async def producer(ready: asyncio.Event) -> None:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            for i, t in enumerate(arrivals):
                if t > loop.time() - t0:
                    await asyncio.sleep(t - (loop.time() - t0))
                available.append(i)
                ready.set()
            state["done"] = True
            ready.set()

        async def chunks(ready: asyncio.Event) -> AsyncGenerator[list[int], None]:
            want = yield []
            while True:
                engine = state["engine"]
                held = engine._taken - engine._consumed + len(engine._inbox)
                if held >= engine._ahead:
                    problems.append(f"pulled holding {held} of {engine._ahead}")
                while not available:
                    if state["done"]:
                        return
                    ready.clear()
                    await ready.wait()
                k = min(want or 1, len(available))
                out, available[:] = available[:k], available[k:]
                want = yield out

        async def call(i: int) -> int:
            if calls[i] is not None:
                await asyncio.sleep(calls[i])
            return i

        async def check() -> None:
            previous = False
            while True:
                await asyncio.sleep(0.125)
                engine = state["engine"]
                held, inbox = engine._taken - engine._consumed, len(engine._inbox)
                if held + inbox > engine._ahead:
                    problems.append(f"holds {held} + {inbox} of {engine._ahead}")
                idle = sum(not f.done() for f in (*engine._pull_waiters, *engine._space_waiters))
                work = inbox or (available and not engine._pulling)
                stuck = bool(idle and engine._ahead - held > 0 and work and not engine._exhausted)
                if stuck and previous:
                    t = asyncio.get_running_loop().time()
                    problems.append(f"t={t}: {idle} idle, holding {held}, {len(available)} up")
                previous = stuck

        async def main() -> list[int]:
            ready = asyncio.Event()
            s = stream_chunks(call, chunks(ready), concurrency=concurrency, buffer=buffer)
            state["engine"] = s._engine
            tasks = [asyncio.create_task(producer(ready)), asyncio.create_task(check())]
            got: list[int] = []
            async with s:
                while True:
                    try:
                        batch = await s.next_batch(rnd.choice([None, 1, 2, 3]))
                    except StopAsyncIteration:
                        break
                    got += [o.value for o in batch]
                    pause = rnd.choice([0, 0, 0.5, 1, 3])
                    if pause:
                        await asyncio.sleep(pause)
            for task in tasks:
                task.cancel()
            return got

        got = testing.run(main(), virtual_clock=True)
        assert sorted(got) == list(range(n))
        assert problems == [], problems


class TestNextBatchArguments:
    @pytest.mark.parametrize("limit", [0, -5, 1.5, "2"])
    def test_a_limit_below_one_or_not_an_int_is_refused_by_name(
        self, vrun: Run[Any], limit: Any
    ) -> None:
        """``limit`` must be None or an int >= 1 (0 or -5 made the stream count outcomes it
        never handed out)."""

        async def ident(x: int) -> int:
            return x

        async def main() -> None:
            async with ss.stream(ident, range(3)) as s:
                await s.next_batch(limit)

        with pytest.raises((TypeError, ValueError), match="limit"):
            vrun(main())
