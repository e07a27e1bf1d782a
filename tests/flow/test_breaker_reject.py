"""Refusals by an open breaker: each is its own unraised CircuitOpen, true and counted."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import slipstream as ss
from slipstream._impl.flow.breaker import _refusal
from slipstream.testing import FakeClock

Run = Callable[[Coroutine[Any, Any, Any]], Any]


async def down(item: int) -> int:
    raise ConnectionError("down")


def opened(clock: FakeClock | None = None, reset_timeout_s: float = 60) -> ss.CircuitBreaker:
    breaker = ss.CircuitBreaker(
        "svc", failure_threshold=1, reset_timeout_s=reset_timeout_s, clock=clock
    )
    breaker.record_failure(breaker.admit(), ConnectionError("down"))
    return breaker


class TestTryAdmit:
    def test_refusal_is_returned_unraised_and_counted(self) -> None:
        """An open breaker returns a fresh CircuitOpen (no traceback) and counts it."""
        clock = FakeClock()
        breaker = opened(clock, reset_timeout_s=10)
        clock.advance(4)
        refusal = breaker.try_admit()
        assert isinstance(refusal, ss.CircuitOpen)
        assert refusal.__traceback__ is None
        assert ("svc", 6.0) == (refusal.name, refusal.retry_after_s)
        assert "circuit 'svc' is open; next probe in 6.000s" == str(refusal)
        assert 1 == breaker.statistics().rejected

    def test_admit_still_raises(self) -> None:
        """admit() raises the refusal, with a traceback, and counts it once."""
        breaker = opened(FakeClock())
        with pytest.raises(ss.CircuitOpen) as info:
            breaker.admit()
        assert info.value.__traceback__ is not None
        assert 1 == breaker.statistics().rejected

    def test_fast_refusal_equals_the_constructor(self) -> None:
        """_refusal builds exactly what CircuitOpen(name, s) builds (fields, text, pickle)."""
        fast, slow = _refusal("svc", 1.5), ss.CircuitOpen("svc", 1.5)
        assert type(fast) is type(slow)
        assert (fast.args, vars(fast), str(fast), repr(fast)) == (
            slow.args,
            vars(slow),
            str(slow),
            repr(slow),
        )
        copy = pickle.loads(pickle.dumps(fast))
        assert (copy.name, copy.retry_after_s) == ("svc", 1.5)

    def test_half_open_probe_in_flight_refuses_the_rest(self) -> None:
        """Half-open: one ticket, then refusals with retry_after_s 0 until the probe ends."""
        clock = FakeClock()
        breaker = opened(clock, reset_timeout_s=5)
        clock.advance(5)
        ticket = breaker.try_admit()
        assert isinstance(ticket, int)
        refused = breaker.try_admit()
        assert isinstance(refused, ss.CircuitOpen)
        assert 0.0 == refused.retry_after_s
        breaker.record_success(ticket)
        assert ss.BreakerState.CLOSED == breaker.state
        assert isinstance(breaker.try_admit(), int)
        assert 1 == breaker.statistics().rejected


class TestRefusedOutcomes:
    def test_each_outcome_has_its_own_exception(self, vrun: Run) -> None:
        """Raising and annotating one refused item's error leaves every other one untouched."""
        breaker = opened()
        results = vrun(ss.map(down, range(50), breaker=breaker, concurrency=8))
        errors = [o.error for o in results]
        assert all(isinstance(e, ss.CircuitOpen) for e in errors)
        assert 50 == len({id(e) for e in errors})
        assert all(e is not None and e.__traceback__ is None for e in errors)

        def raise_first() -> None:
            try:
                raise KeyError("context")
            except KeyError:
                _ = results[0].value

        with pytest.raises(ss.CircuitOpen) as info:
            raise_first()
        info.value.add_note("first item only")
        assert info.value is errors[0]
        assert errors[0].__traceback__ is not None
        assert errors[0].__context__ is not None
        for other in errors[1:]:
            assert other is not None
            assert other.__traceback__ is None
            assert other.__context__ is None
            assert not hasattr(other, "__notes__")

    def test_messages_tell_the_time_left_when_refused(self, vrun: Run) -> None:
        """Items refused later in the open period report less time left, each correctly."""
        breaker = ss.CircuitBreaker("svc", failure_threshold=1, reset_timeout_s=60)

        async def main() -> list[Any]:
            await ss.map(down, range(1), breaker=breaker)
            first = await ss.map(down, range(3), breaker=breaker)
            await asyncio.sleep(25)
            later = await ss.map(down, range(3), breaker=breaker)
            return [*first, *later]

        outcomes = vrun(main())
        left = [o.error.retry_after_s for o in outcomes]
        assert left[:3] == pytest.approx([60.0] * 3)
        assert left[3:] == pytest.approx([35.0] * 3)
        assert "next probe in 35.000s" in str(outcomes[-1].error)
        assert all(o.attempts == 0 for o in outcomes)

    def test_open_half_open_closed_on_the_virtual_clock(self, vrun: Run) -> None:
        """Open refuses (counted, never called), half-open admits one probe, then closed."""
        calls: list[int] = []
        healthy = False

        async def service(item: int) -> int:
            calls.append(item)
            await asyncio.sleep(1)
            if not healthy:
                raise ConnectionError("down")
            return item

        breaker = ss.CircuitBreaker("svc", failure_threshold=1, reset_timeout_s=10)

        async def main() -> tuple[Any, Any, Any]:
            nonlocal healthy
            tripped = await ss.map(service, range(5), breaker=breaker, concurrency=1)
            await asyncio.sleep(10)
            healthy = True
            probing = await ss.map(service, range(5), breaker=breaker, concurrency=5)
            closed = await ss.map(service, range(5), breaker=breaker, concurrency=5)
            return tripped, probing, closed

        tripped, probing, closed = vrun(main())
        assert (5, 4) == (tripped.summary.failed, tripped.summary.rejected)
        assert (1, 4) == (probing.summary.ok, probing.summary.rejected)
        assert (5, 0) == (closed.summary.ok, closed.summary.rejected)
        assert 1 + 1 + 5 == len(calls)
        stats = breaker.statistics()
        assert (8, 1, 6, 1) == (stats.rejected, stats.failures, stats.successes, stats.times_opened)

    def test_retry_does_not_retry_a_refusal(self, vrun: Run) -> None:
        """With retry=, a refused item is one outcome with 0 attempts and no retries."""
        breaker = opened()
        results = vrun(ss.map(down, range(10), breaker=breaker, retry=ss.Retry(attempts=5)))
        assert (10, 0, 0) == (
            results.summary.rejected,
            results.summary.retries,
            sum(o.attempts for o in results),
        )

    def test_retry_decorator_does_not_retry_circuit_open(self, vrun: Run) -> None:
        """ss.retry's default filter treats CircuitOpen as not transient: one try, raised."""
        breaker = opened()
        tries: list[int] = []

        @ss.retry(attempts=5)
        async def guarded() -> int:
            tries.append(1)
            return await breaker.call(down, 0)

        with pytest.raises(ss.CircuitOpen):
            vrun(guarded())
        assert 1 == len(tries)


class TestMapAdmitsBeforeTheAttempt:
    def test_the_probe_admitted_first_closes_the_breaker(self, vrun: Run) -> None:
        """With a breaker and no limiter or retry, ``ss.map`` admits before the attempt: the
        half-open probe's ticket reaches the call, its success closes the breaker, and the
        items after it are admitted (were the ticket lost, they would all be refused)."""
        clock = FakeClock()
        breaker = opened(clock, reset_timeout_s=10)
        clock.advance(11)  # half-open: one probe

        async def ok(item: int) -> int:
            return item

        results = vrun(ss.map(ok, range(5), breaker=breaker, concurrency=1))
        assert [o.value for o in results] == [0, 1, 2, 3, 4]
        assert breaker.state is ss.BreakerState.CLOSED

    def test_an_open_breaker_refuses_each_item_with_no_attempt(self, vrun: Run) -> None:
        """Each refused item: its own CircuitOpen, 0 attempts, counted as rejected."""
        breaker = opened(FakeClock())
        results = vrun(ss.map(down, range(4), breaker=breaker, concurrency=2))
        errors = [o.error for o in results]
        assert all(isinstance(e, ss.CircuitOpen) for e in errors)
        assert len({id(e) for e in errors}) == 4
        assert [o.attempts for o in results] == [0, 0, 0, 0]
        assert results.summary.rejected == 4


class TestPickling:
    def test_a_refusal_crosses_pickle_and_tblib_with_its_fields_and_notes(self) -> None:
        """Dask ships errors with tblib's pickling installed, which rebuilds an exception with
        a custom ``__init__`` from its ``__dict__``: the slots must come through it too."""
        from tblib import pickling_support

        refusal = _refusal("svc", 2.5)
        refusal.add_note("while refusing item 7")
        plain = pickle.loads(pickle.dumps(refusal))
        pickling_support.install(refusal)
        via_tblib = pickle.loads(pickle.dumps(refusal))
        for copy in (plain, via_tblib):
            assert (copy.name, copy.retry_after_s, copy.args) == ("svc", 2.5, ("svc", 2.5))
            assert copy.__notes__ == ["while refusing item 7"]
