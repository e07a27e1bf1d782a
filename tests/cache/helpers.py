"""What the cache tests share: a counting loader, key-shaped arguments, an entry count."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Coroutine
from typing import Any

import slipstream as ss

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class Loader:
    """An async loader that counts calls, takes `delay_s`, and can fail."""

    def __init__(self, delay_s: float = 0.01, fail: bool = False) -> None:
        self.calls = 0
        self.cancelled = 0
        self.delay_s = delay_s
        self.fail = fail

    async def __call__(self, x: Any = 1) -> Any:
        self.calls += 1
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.fail:
            raise ConnectionError(f"backend down for {x}")
        return ("value", x, self.calls)


def entries(cache: ss.Cache) -> int:
    """How many entries a memory cache holds now."""
    count = cache.statistics().entries
    assert count is not None
    return count


@dataclasses.dataclass(frozen=True)
class Schema:
    name: str
    fields: tuple[str, ...]


class Session:
    """A database session: its repr is an address, so it cannot be part of a key."""
