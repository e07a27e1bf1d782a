"""SingleFlight on its own: one computation per key, its outcome shared, its table emptied."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future
from typing import Any

import pytest

from slipstream._impl.cache.flight import SingleFlight
from slipstream._impl.cache.stats import Counters

from .helpers import Run


class TestThreads:
    @pytest.mark.realtime
    def test_the_owners_error_reaches_every_joiner_and_frees_the_key(self) -> None:
        """When the thread computing a key raises, the threads that joined it raise the same
        error, and the next call of the key computes afresh."""
        counters = Counters()
        flights: SingleFlight[Future[Any]] = SingleFlight(counters)
        start = threading.Barrier(6)
        outcomes: list[Any] = []

        def compute() -> Any:
            deadline = time.monotonic() + 10
            while counters.joins < 5 and time.monotonic() < deadline:
                time.sleep(0.001)
            raise ValueError("the load failed")

        def caller() -> None:
            start.wait()
            try:
                outcomes.append(flights.run_sync("k", compute))
            except ValueError as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=caller) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert (1, 5) == (counters.misses, counters.joins)
        assert 1 == len({id(o) for o in outcomes})  # one error object, raised six times
        assert isinstance(outcomes[0], ValueError)
        assert (0, 7) == (len(flights), flights.run_sync("k", lambda: 7))


class TestBackground:
    def test_a_background_flight_returns_at_once_and_can_be_joined(self, vrun: Run) -> None:
        """A background start returns None at once and counts nothing; a caller arriving
        while it runs joins it (one join) and gets its value."""
        counters = Counters()
        flights: SingleFlight[asyncio.Task[Any]] = SingleFlight(counters)

        async def load() -> str:
            await asyncio.sleep(1)
            return "fresh"

        async def main() -> tuple[Any, Any, int]:
            started = await flights.run("k", load, background=True)
            joined = await flights.run("k", load)
            return started, joined, len(flights)

        assert (None, "fresh", 0) == vrun(main())
        assert (0, 1) == (counters.misses, counters.joins)

    def test_a_failed_background_flight_is_logged(
        self, vrun: Run, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Nobody awaits a background refresh, so its failure is logged as a warning instead
        of vanishing."""
        flights: SingleFlight[asyncio.Task[Any]] = SingleFlight(Counters())

        async def load() -> str:
            raise ConnectionError("down")

        async def main() -> None:
            await flights.run("k", load, background=True)
            await asyncio.sleep(0.1)

        caplog.set_level(logging.WARNING, logger="slipstream.cache")
        vrun(main())
        assert "background refresh of 'k' failed" in caplog.text
