"""``AsyncResource``: ``async with`` closes the object however the block ends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import slipstream as ss
from slipstream._impl.core.resource import AsyncResource

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class _Thing(AsyncResource):
    def __init__(self) -> None:
        self.closes = 0

    async def aclose(self) -> None:
        self.closes += 1


class TestAsyncResource:
    def test_enter_returns_the_object_and_exit_closes_it(self, vrun: Run) -> None:
        """Entering hands back the object itself; leaving normally closes it once."""

        async def main() -> None:
            thing = _Thing()
            async with thing as entered:
                assert entered is thing
                assert thing.closes == 0
            assert thing.closes == 1

        vrun(main())

    def test_a_failing_block_still_closes_and_its_error_propagates(self, vrun: Run) -> None:
        """The block's exception is not swallowed, and the object is closed on the way out."""

        async def main() -> None:
            thing = _Thing()
            with pytest.raises(LookupError):
                async with thing:
                    raise LookupError("boom")
            assert thing.closes == 1

        vrun(main())

    def test_a_cancelled_block_still_closes(self, vrun: Run) -> None:
        """Cancellation inside the block closes the object and stays a cancellation."""

        async def main() -> None:
            thing = _Thing()
            entered = asyncio.Event()

            async def body() -> None:
                async with thing:
                    entered.set()
                    await asyncio.Event().wait()

            task = asyncio.create_task(body())
            await entered.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert thing.closes == 1

        vrun(main())

    def test_the_public_resources_share_it(self) -> None:
        """Cache, Registry, Pipeline, Checkpoint, Stream and DaskRunner enter and leave one way."""
        for cls in (ss.Cache, ss.Registry, ss.Pipeline, ss.Checkpoint, ss.Stream):
            assert issubclass(cls, AsyncResource), cls
