"""``async with x:`` for every object that owns something to close, defined once.

Entering hands back the object; leaving calls its ``aclose()``, whether the block returned,
raised or was cancelled. A class whose entering does work (opens, starts) overrides
``__aenter__`` alone; one whose leaving depends on how the block ended (``TaskSet`` drains or
cancels, ``BatchWriter`` shields its flush) keeps its own ``__aexit__``.
"""

from __future__ import annotations

from typing import Self

__all__ = ["AsyncResource"]


class AsyncResource:
    """A base for objects with ``aclose()`` that are used as ``async with obj:``."""

    __slots__ = ()

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
