"""GuardedStore: a failing backend is a miss behind a circuit breaker, with one warning per
outage, and neither a cancellation nor a misuse counts as a failure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from typing import Any

import pytest

from slipstream._impl.cache.guard import GuardedStore
from slipstream._impl.cache.store import FRESH, Terms
from slipstream._impl.cache.stores import MemoryStore

from .helpers import Run

TERMS = Terms(60.0, 0.0, "default", ())


class Flaky(MemoryStore):
    """A memory store that fails like an unreachable server while ``down`` is set, and
    counts how often it was reached."""

    def __init__(self) -> None:
        super().__init__(max_entries=100, max_bytes=None)
        self.down = False
        self.calls = 0
        self.hang: asyncio.Event | None = None

    def _reach(self) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("connection refused")

    def lookup_sync(self, key: Hashable) -> tuple[int, Any] | None:
        self._reach()
        return super().lookup_sync(key)

    async def lookup(self, key: Hashable) -> tuple[int, Any] | None:
        if self.hang is not None:
            await self.hang.wait()
        return self.lookup_sync(key)

    def store_sync(self, key: Hashable, value: Any, terms: Terms) -> None:
        self._reach()
        super().store_sync(key, value, terms)


class AsyncOnly(Flaky):
    """A store that serves only async callers, as Redis does."""

    supports_sync = False

    def lookup_sync(self, key: Hashable) -> tuple[int, Any] | None:
        raise TypeError("async only")


def guarded(inner: Flaky) -> tuple[GuardedStore[Any], list[int]]:
    errors: list[int] = []
    return GuardedStore(inner, retry_s=5.0, on_error=lambda: errors.append(1)), errors


class TestOutages:
    def test_failures_are_misses_then_the_backend_is_skipped(self, vrun: Run) -> None:
        """While the backend fails, lookups are misses; after 3 failures the breaker skips it
        (no call reaches it) and every skipped call still counts as an error."""
        inner = Flaky()
        store, errors = guarded(inner)
        inner.down = True

        async def main() -> list[Any]:
            return [await store.lookup("k") for _ in range(5)]

        assert [None] * 5 == vrun(main())
        assert (3, 5) == (inner.calls, len(errors))

    def test_the_backend_is_probed_again_after_retry_s(self, vrun: Run) -> None:
        """Once retry_s has passed, one call probes the backend; when it answers, the store
        serves again."""
        inner = Flaky()
        store, _ = guarded(inner)

        async def main() -> Any:
            await store.store("k", "v", TERMS)
            inner.down = True
            for _ in range(3):
                await store.lookup("k")
            inner.down = False
            skipped = await store.lookup("k")
            await asyncio.sleep(5)
            return skipped, await store.lookup("k")

        assert (None, (FRESH, "v")) == vrun(main())

    def test_one_warning_per_outage_and_recovery_when_every_failed_kind_works(
        self, vrun: Run, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Failed lookups and stores make one warning; the outage ends (one info line) only
        when both kinds of operation have worked again, not at the first good lookup."""
        inner = Flaky()
        store, _ = guarded(inner)
        caplog.set_level(logging.INFO, logger="slipstream.cache")

        async def main() -> list[str]:
            inner.down = True
            await store.lookup("k")
            await store.store("k", 1, TERMS)
            inner.down = False
            await store.lookup("k")
            after_lookup = [r.getMessage() for r in caplog.records]
            await store.store("k", 1, TERMS)
            return after_lookup

        after_lookup = vrun(main())
        assert 1 == len(after_lookup)  # the warning; a good lookup alone ends nothing
        assert [logging.WARNING, logging.INFO] == [r.levelno for r in caplog.records]
        assert "recovered" in caplog.records[-1].getMessage()


class TestNotFailures:
    def test_a_cancelled_call_is_not_a_failure(self, vrun: Run) -> None:
        """A lookup cancelled while the backend is slow raises CancelledError, counts no error
        and does not push the breaker towards opening."""
        inner = Flaky()
        store, errors = guarded(inner)

        async def main() -> Any:
            inner.hang = asyncio.Event()
            for _ in range(3):
                task = asyncio.create_task(store.lookup("k"))
                await asyncio.sleep(1)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            inner.hang = None
            await store.store("k", "v", TERMS)
            return await store.lookup("k")

        assert (FRESH, "v") == vrun(main())
        assert [] == errors

    def test_sync_use_of_an_async_only_store_is_a_type_error_even_when_open(
        self, vrun: Run
    ) -> None:
        """A sync call on an async-only store raises its TypeError, never a silent miss, even
        while the breaker is open, and is not counted as a backend error."""
        inner = AsyncOnly()
        store, errors = guarded(inner)
        inner.down = True

        async def main() -> None:
            for _ in range(3):
                await store.store("k", 1, TERMS)

        vrun(main())
        assert 3 == len(errors)
        with pytest.raises(TypeError, match="async only"):
            store.lookup_sync("k")
        assert 3 == len(errors)
