"""CircuitBreaker: trips, fails fast, admits exactly one probe, recovers, holds no lock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import slipstream as ss
from slipstream.testing import FakeClock

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def boom() -> None:
    raise ConnectionError("down")


def fine() -> str:
    return "ok"


def trip(breaker: ss.CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(ConnectionError):
            breaker.call_sync(boom)


class TestCircuitBreaker:
    def test_opens_after_consecutive_failures(self) -> None:
        """Three consecutive failures open it; a success in between resets the count."""
        breaker = ss.CircuitBreaker(failure_threshold=3, clock=FakeClock())
        trip(breaker, 2)
        assert "ok" == breaker.call_sync(fine)
        trip(breaker, 2)
        assert ss.BreakerState.CLOSED == breaker.state
        trip(breaker, 1)
        assert ss.BreakerState.OPEN == breaker.state

    def test_open_fails_fast_without_calling(self) -> None:
        """While open, calls raise CircuitOpen with the time left and never run."""
        clock = FakeClock()
        breaker = ss.CircuitBreaker("llm", failure_threshold=1, reset_timeout_s=10, clock=clock)
        trip(breaker, 1)
        clock.advance(4)
        ran = []
        with pytest.raises(ss.CircuitOpen) as info:
            breaker.call_sync(lambda: ran.append(1))
        assert [] == ran
        assert ("llm", 6.0) == (info.value.name, info.value.retry_after_s)
        assert 1 == breaker.statistics().rejected

    def test_half_open_admits_exactly_one_probe(self, vrun: Run) -> None:
        """After the timeout, of 100 concurrent callers exactly one reaches the service."""
        clock = FakeClock()
        breaker = ss.CircuitBreaker(failure_threshold=1, reset_timeout_s=5, clock=clock)
        trip(breaker, 1)
        clock.advance(5)
        reached = []

        async def service() -> str:
            reached.append(1)
            await asyncio.sleep(1)
            return "ok"

        async def main() -> list[Any]:
            return await asyncio.gather(
                *(breaker.call(service) for _ in range(100)), return_exceptions=True
            )

        results = vrun(main())
        assert 1 == len(reached)
        assert 1 == results.count("ok")
        assert 99 == sum(isinstance(r, ss.CircuitOpen) for r in results)
        assert ss.BreakerState.CLOSED == breaker.state

    def test_failed_probe_reopens(self) -> None:
        """A failing probe opens the circuit for another full timeout."""
        clock = FakeClock()
        breaker = ss.CircuitBreaker(failure_threshold=1, reset_timeout_s=5, clock=clock)
        trip(breaker, 1)
        clock.advance(5)
        assert ss.BreakerState.HALF_OPEN == breaker.state
        trip(breaker, 1)
        assert ss.BreakerState.OPEN == breaker.state
        clock.advance(4.9)
        with pytest.raises(ss.CircuitOpen):
            breaker.call_sync(fine)
        assert 2 == breaker.statistics().times_opened

    def test_cancelled_probe_frees_the_slot(self, vrun: Run) -> None:
        """A probe that is cancelled lets the next caller probe."""
        clock = FakeClock()
        breaker = ss.CircuitBreaker(failure_threshold=1, reset_timeout_s=1, clock=clock)
        trip(breaker, 1)
        clock.advance(1)

        async def main() -> str:
            probe = asyncio.create_task(breaker.call(asyncio.sleep, 10))
            await asyncio.sleep(0)
            probe.cancel()
            with pytest.raises(asyncio.CancelledError):
                await probe

            async def ok() -> str:
                return "ok"

            return await breaker.call(ok)

        assert "ok" == vrun(main())

    def test_failure_rate_window(self) -> None:
        """Half the calls failing in the window (with enough calls) opens it; too few do not."""
        clock = FakeClock()
        breaker = ss.CircuitBreaker(
            failure_threshold=100, failure_rate=0.5, window_s=10, min_calls=10, clock=clock
        )
        for _ in range(4):
            breaker.call_sync(fine)
            trip(breaker, 1)
        assert ss.BreakerState.CLOSED == breaker.state  # 8 calls < min_calls
        breaker.call_sync(fine)
        trip(breaker, 1)
        assert ss.BreakerState.OPEN == breaker.state  # 10 calls, 5 failed

    def test_old_failures_leave_the_window(self) -> None:
        """Failures older than window_s no longer count."""
        clock = FakeClock()
        breaker = ss.CircuitBreaker(
            failure_threshold=100, failure_rate=0.5, window_s=10, min_calls=4, clock=clock
        )
        trip(breaker, 3)
        clock.advance(11)
        for _ in range(3):
            breaker.call_sync(fine)
        trip(breaker, 1)
        assert ss.BreakerState.CLOSED == breaker.state
        assert (4, 1) == (breaker.statistics().window_calls, breaker.statistics().window_failures)

    def test_counts_filter(self) -> None:
        """Errors outside counts= are the caller's own and do not trip the circuit."""
        breaker = ss.CircuitBreaker(failure_threshold=1, counts=ConnectionError)
        with pytest.raises(ValueError, match="bad input"):
            breaker.call_sync(lambda: (_ for _ in ()).throw(ValueError("bad input")))
        assert ss.BreakerState.CLOSED == breaker.state

    def test_state_callbacks(self) -> None:
        """on_state_change sees closed->open->half_open->closed."""
        clock = FakeClock()
        seen: list[tuple[str, str]] = []
        breaker = ss.CircuitBreaker(
            failure_threshold=1,
            reset_timeout_s=1,
            clock=clock,
            on_state_change=lambda b, old, new: seen.append((old.value, new.value)),
        )
        trip(breaker, 1)
        clock.advance(1)
        breaker.call_sync(fine)
        assert [
            ("closed", "open"),
            ("open", "half_open"),
            ("half_open", "closed"),
        ] == seen

    def test_no_lock_held_across_the_call(self) -> None:
        """A call in progress does not block another thread's call through the same breaker."""
        breaker = ss.CircuitBreaker()
        inner_done = threading.Event()

        def outer() -> str:
            t = threading.Thread(target=lambda: (breaker.call_sync(fine), inner_done.set()))
            t.start()
            assert inner_done.wait(5), "the second call was blocked by the first"
            t.join()
            return "ok"

        assert "ok" == breaker.call_sync(outer)

    def test_decorator_and_context_manager(self, vrun: Run) -> None:
        """@breaker and `async with breaker` both record outcomes."""
        breaker = ss.CircuitBreaker(failure_threshold=2)

        @breaker
        async def failing() -> None:
            raise ConnectionError

        async def main() -> None:
            with pytest.raises(ConnectionError):
                await failing()
            with pytest.raises(ConnectionError):
                async with breaker:
                    raise ConnectionError
            # read inside the loop: the breaker's default clock is the loop's (virtual) clock
            assert ss.BreakerState.OPEN == breaker.state
            assert "state=open" in repr(breaker)

        vrun(main())

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"failure_threshold": 0}, "failure_threshold"),
            ({"failure_rate": 1.5}, "failure_rate"),
            ({"window_s": 0}, "window_s"),
            ({"min_calls": 0}, "min_calls"),
            ({"reset_timeout_s": -1}, "reset_timeout_s"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, float], name: str) -> None:
        """Bad values raise ValueError naming the parameter."""
        with pytest.raises(ValueError, match=f"'{name}'"):
            ss.CircuitBreaker(**kwargs)  # type: ignore[arg-type]


class TestStaleResults:
    """Only the probe decides the half-open state; calls admitted earlier change nothing."""

    @pytest.mark.parametrize("ending", ["fails", "cancelled", "succeeds"])
    def test_a_call_admitted_while_closed_cannot_touch_the_probe(
        self, vrun: Run, ending: str
    ) -> None:
        """A call admitted while closed that fails, is cancelled or succeeds during the probe
        neither admits a second probe nor re-opens or closes the circuit."""
        clock = FakeClock()
        breaker = ss.CircuitBreaker(failure_threshold=1, reset_timeout_s=5, clock=clock)
        probes_in_flight = [0, 0]  # now, peak

        async def old_call(gate: asyncio.Event) -> None:
            await gate.wait()
            if ending == "fails":
                raise ConnectionError("late failure")

        async def probe(gate: asyncio.Event) -> str:
            probes_in_flight[0] += 1
            probes_in_flight[1] = max(probes_in_flight[1], probes_in_flight[0])
            try:
                await gate.wait()
            finally:
                probes_in_flight[0] -= 1
            return "ok"

        async def main() -> tuple[ss.BreakerState, int, ss.BreakerState]:
            old_gate, probe_gate = asyncio.Event(), asyncio.Event()
            old = asyncio.create_task(breaker.call(old_call, old_gate))
            await asyncio.sleep(0)  # admitted while closed
            trip(breaker, 1)  # another call opens the circuit
            clock.advance(5)
            first = asyncio.create_task(breaker.call(probe, probe_gate))
            await asyncio.sleep(0)  # the probe is in flight
            if ending == "cancelled":
                old.cancel()
            else:
                old_gate.set()
            await asyncio.gather(old, return_exceptions=True)
            during = breaker.state
            rejected = 0
            for _ in range(10):  # the slot is still taken: everyone else fails fast
                try:
                    await breaker.call(probe, probe_gate)
                except ss.CircuitOpen:
                    rejected += 1
            probe_gate.set()
            assert "ok" == await first
            return during, rejected, breaker.state

        during, rejected, after = vrun(main())
        assert ss.BreakerState.HALF_OPEN == during
        assert 10 == rejected
        assert 1 == probes_in_flight[1]
        assert ss.BreakerState.CLOSED == after

    def test_a_released_probe_ticket_is_dead(self) -> None:
        """A probe that was released cannot later close or open the circuit."""
        clock = FakeClock()
        breaker = ss.CircuitBreaker(failure_threshold=1, reset_timeout_s=5, clock=clock)
        trip(breaker, 1)
        clock.advance(5)
        first = breaker.admit()
        breaker.release(first)
        second = breaker.admit()  # the next probe
        breaker.record_success(first)  # stale: must not close the circuit under the new probe
        assert ss.BreakerState.HALF_OPEN == breaker.state
        with pytest.raises(ss.CircuitOpen):
            breaker.admit()
        breaker.record_failure(second, ConnectionError())
        assert ss.BreakerState.OPEN == breaker.state

    def test_a_stale_failure_does_not_trip_the_new_closed_period(self) -> None:
        """A failure of a call admitted before the circuit opened and closed again does not
        count in the new closed period."""
        clock = FakeClock()
        breaker = ss.CircuitBreaker(failure_threshold=1, reset_timeout_s=5, clock=clock)
        old = breaker.admit()
        trip(breaker, 1)
        clock.advance(5)
        breaker.call_sync(fine)  # the probe closes it
        breaker.record_failure(old, ConnectionError("from long ago"))
        assert ss.BreakerState.CLOSED == breaker.state
        assert 0 == breaker.statistics().consecutive_failures

    def test_nested_context_managers_keep_their_own_tickets(self, vrun: Run) -> None:
        """`async with breaker:` nested in one task pairs each exit with its own admission."""
        clock = FakeClock()
        breaker = ss.CircuitBreaker(failure_threshold=1, reset_timeout_s=5, clock=clock)

        async def main() -> ss.BreakerState:
            trip(breaker, 1)
            clock.advance(5)
            async with breaker:  # the probe
                with pytest.raises(ss.CircuitOpen):
                    async with breaker:
                        pass
            return breaker.state

        assert ss.BreakerState.CLOSED == vrun(main())

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from("aosfrt"), st.integers(0, 7)), max_size=60))
    def test_never_two_probes_in_flight(self, ops: list[tuple[str, int]]) -> None:
        """Under any interleaving of admissions, results, releases and time, at most one call
        admitted while half-open is unresolved at a time."""
        clock = FakeClock()
        breaker = ss.CircuitBreaker(failure_threshold=2, reset_timeout_s=1, clock=clock)
        open_calls: list[tuple[int, bool]] = []  # (ticket, admitted as a probe)
        for op, pick in ops:
            if op == "a":
                before = breaker.state
                try:
                    ticket = breaker.admit()
                except ss.CircuitOpen:
                    continue
                open_calls.append((ticket, before is ss.BreakerState.HALF_OPEN))
            elif op == "t":
                clock.advance(1)
            elif open_calls:
                ticket, _ = open_calls.pop(pick % len(open_calls))
                if op == "s":
                    breaker.record_success(ticket)
                elif op in "fo":
                    breaker.record_failure(ticket, ConnectionError())
                else:
                    breaker.release(ticket)
            assert sum(probe for _, probe in open_calls) <= 1


class TestDecoratingGenerators:
    def test_generator_functions_are_refused_with_a_hint(self) -> None:
        """@breaker on a generator or async generator function raises TypeError at decoration
        (it would guard nothing), with a HINT."""
        breaker = ss.CircuitBreaker()

        def gen() -> Any:
            yield 1

        async def agen() -> Any:
            yield 1

        for fn in (gen, agen):
            with pytest.raises(TypeError, match="HINT"):
                breaker(fn)

    def test_async_callable_objects_are_guarded(self, vrun: Run) -> None:
        """An object with an async __call__ is awaited under the breaker, not returned as a
        bare coroutine."""
        breaker = ss.CircuitBreaker(failure_threshold=1)

        class Service:
            async def __call__(self) -> None:
                raise ConnectionError("down")

        guarded = breaker(Service())

        async def main() -> ss.BreakerState:
            with pytest.raises(ConnectionError):
                await guarded()
            return breaker.state

        assert ss.BreakerState.OPEN == vrun(main())
