"""What kind of callable a decorator was given: sync, async, or a (sync or async) generator.

Decorators that wrap a call (``@ss.retry``, ``@breaker``, ``@ss.cached``) must tell these apart
to wrap the call at all: a generator function returns at once, before any of its body runs, so
a wrapper written for plain functions would retry or guard nothing. ``inspect`` already unwraps
``functools.partial`` and bound methods; an object whose class has an ``async def __call__`` (or
an ``AsyncMock``) is async too.
"""

from __future__ import annotations

import functools
import inspect
from typing import Literal

__all__ = ["Kind", "kind_of"]

Kind = Literal["sync", "async", "generator", "async_generator"]


def kind_of(fn: object) -> Kind:
    """``"async"`` for coroutine functions (and objects with an async ``__call__``),
    ``"generator"`` / ``"async_generator"`` for generator functions, else ``"sync"``."""
    targets = [fn]
    call = getattr(type(fn), "__call__", None)  # noqa: B004  # the class's, not the instance's
    if not inspect.isroutine(fn) and not isinstance(fn, functools.partial) and call is not None:
        targets.append(call)
    for target in targets:
        if inspect.isasyncgenfunction(target):
            return "async_generator"
        if inspect.isgeneratorfunction(target):
            return "generator"
        if inspect.iscoroutinefunction(target):
            return "async"
    return "sync"
