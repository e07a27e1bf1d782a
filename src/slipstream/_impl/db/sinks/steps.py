"""One body for the sync and the async twin of a flush: steps, and the two drivers that run them.

A step function is a generator that does its database calls as ``result = yield call(...)``.
Driven by ``run_sync`` (a sync ``Session``), each call has already run when it is yielded and
its result is sent straight back; driven by ``run_async`` (an ``AsyncSession``, an asyncpg
connection), each call returned an awaitable, which is awaited, and its result is sent back or
its error thrown in at the ``yield``, where the step's own ``try`` handles it. So the SQL, the
marker handling and the outcome checks are written once, and each twin is one line.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

__all__ = ["Steps", "run_async", "run_sync"]

T = TypeVar("T")

# Yields a driver call's result (sync) or awaitable (async), gets its value back, returns T.
Steps = Generator[Any, Any, T]


def run_sync(steps: Steps[T]) -> T:
    """Run ``steps`` whose calls ran as they were yielded: each result goes straight back."""
    try:
        value = steps.send(None)
        while True:
            value = steps.send(value)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def run_async(steps: Steps[T]) -> T:
    """Run ``steps`` whose calls yield awaitables: each is awaited, and its value sent back or
    its error thrown in where it was yielded."""
    try:
        step = steps.send(None)
        while True:
            try:
                value = await step
            except BaseException as exc:  # cancellation too: the step rolls back, re-raises
                step = steps.throw(exc)
            else:
                step = steps.send(value)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
