"""Stage functions for the DaskRunner tests: module-level, so workers import them by name."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import slipstream as ss

ATTEMPTS: dict[int, int] = {}  # per worker process


class Handshake:
    """A client whose creation the worker's registry counts."""

    def __init__(self) -> None:
        self.pid = os.getpid()


class Unpicklable(Exception):
    """An error pickle cannot rebuild: it comes back from the worker as a RemoteError."""

    def __init__(self, message: str, raw: str) -> None:  # pickle cannot rebuild this
        super().__init__(message)
        self.detail = raw


async def setup() -> Handshake:
    """The worker's one client, from its own registry."""
    return await ss.default_registry().get("handshake", Handshake)


async def failing_setup() -> Any:
    """A setup whose endpoint is down: the run must stop before any item."""
    raise ConnectionRefusedError("the model server is down")


async def work(n: int, client: Handshake) -> dict[str, Any]:
    """Skips every tenth item, fails 13 with an unpicklable error, and fails multiples of 7
    once (a retry passes them)."""
    await asyncio.sleep(0.001)
    ATTEMPTS[n] = ATTEMPTS.get(n, 0) + 1
    if n % 10 == 9:
        raise ss.Skip(f"item {n} is empty")
    if n == 13:
        raise Unpicklable("answer does not validate", f"raw answer {n}")
    if n % 7 == 0 and ATTEMPTS[n] == 1:
        raise ConnectionResetError("transient")
    return {"key": str(n), "value": n * 2, "pid": client.pid}


def noop(n: int) -> int:
    """Nothing to do: the cost of the dispatch alone."""
    return n


def crash_on_five(n: int) -> int:
    """Kills its worker process on item 5."""
    if n == 5:
        os._exit(1)  # the worker process dies mid-batch
    return n


def whoami(n: int) -> tuple[str, Any, int]:
    """The identity the worker sees for this call: the engine ships it with the value."""
    from slipstream._impl.pipeline.stage import current_item

    item = current_item()
    return (item.key, item.source["id"], n)


async def slow(n: int) -> int:
    """A stage slow enough that the queue to the workers fills up."""
    await asyncio.sleep(0.2)
    return n
