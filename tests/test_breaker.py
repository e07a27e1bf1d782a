"""CircuitBreaker: trips, fails fast, admits exactly one probe, recovers, holds no lock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

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
