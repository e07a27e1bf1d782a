"""``@ss.retry``: a ``Retry`` policy around a sync or async function or generator.

The original exception is re-raised, never wrapped (the reason for giving up is added as a
note: ``exc.__notes__``). A generator is retried until it yields its first item and never after,
since a new attempt would repeat what the consumer already has. Sync wrappers sleep with
``time.sleep``, async ones with ``asyncio.sleep``; the policy itself is ``retry_policy.Retry``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any, ParamSpec, TypeVar, cast, overload

from ..core import clock as _clock
from ..core.callables import kind_of
from ..core.clock import now as _now
from ..core.transient import is_transient as is_transient
from .filters import ExceptionFilter as ExceptionFilter
from .filters import matcher as _matcher  # noqa: F401  # importable from here, as it always was
from .retry_policy import Retry as Retry
from .retry_policy import RetryBudget as RetryBudget
from .retry_policy import retry_after_s as retry_after_s

__all__ = ["Retry", "RetryBudget", "is_transient", "retry", "retry_after_s"]

P = ParamSpec("P")
T = TypeVar("T")


@overload
def retry(policy: Retry | None = None, /) -> Callable[[Callable[P, T]], Callable[P, T]]: ...
@overload
def retry(**options: Any) -> Callable[[Callable[P, T]], Callable[P, T]]: ...


def retry(
    policy: Retry | None = None, /, **options: Any
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a sync or async function with a retry policy.

    ``@ss.retry(attempts=5, on=httpx.HTTPError)`` or ``@ss.retry(policy)``. Sync functions sleep
    with ``time.sleep``; async ones with ``asyncio.sleep``. On the success path the cost is one
    clock read and a try block.
    """
    if policy is not None and options:
        raise TypeError("give a Retry policy or keyword options, not both")
    if policy is not None and not isinstance(policy, Retry):
        raise TypeError(
            f"'policy' must be a Retry, got {type(policy).__name__}"
            "\nHINT: use @ss.retry() or @ss.retry(ss.Retry(...)), not a bare @ss.retry"
        )
    pol = policy if policy is not None else Retry(**options)

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        if not callable(fn):
            raise TypeError(f"'fn' must be callable, got {type(fn).__name__}")
        kind = kind_of(fn)
        if kind == "async":
            return cast(Callable[P, T], _retry_async(pol, cast(Any, fn)))
        if kind == "generator":
            return cast(Callable[P, T], _retry_generator(pol, cast(Any, fn)))
        if kind == "async_generator":
            return cast(Callable[P, T], _retry_async_generator(pol, cast(Any, fn)))
        return _retry_sync(pol, fn)

    return decorate


def _retry_sync(pol: Retry, fn: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(fn)
    def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        # the loop-free clock: as cheap as time.monotonic, and a virtual-clock test drives it
        clock = _clock.clock
        start = clock()
        if pol.budget is not None:
            pol.budget.deposit()
        attempts = 1
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                wait = pol.delay(exc, attempts, clock() - start)
                if wait is None:
                    raise
            attempts += 1
            time.sleep(wait)

    return sync_wrapper


def _retry_async(pol: Retry, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    @functools.wraps(fn)
    async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        start = _now()
        if pol.budget is not None:
            pol.budget.deposit()
        attempts = 1
        while True:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                wait = pol.delay(exc, attempts, _now() - start)
                if wait is None:
                    raise
            attempts += 1
            await asyncio.sleep(wait)

    return async_wrapper


_AFTER_FIRST = (
    "slipstream: not retried: the generator had already yielded {} item(s), which a new "
    "attempt would repeat"
)


class _Resumed:
    """A started generator with its first item put back in front, for ``yield from``: the
    language then forwards ``send``, ``throw`` and ``close``; this counts the items handed out,
    for the note on an error after the first."""

    __slots__ = ("_first", "_gen", "delivered")

    def __init__(self, gen: Generator[Any, Any, Any], first: Any) -> None:
        self._gen = gen
        self._first = first
        self.delivered = 0

    def __iter__(self) -> _Resumed:
        return self

    def __next__(self) -> Any:
        if self.delivered == 0:  # the item the retried attempt already took
            self.delivered = 1
            return self._first
        return self.send(None)

    def send(self, sent: Any) -> Any:
        value = self._gen.send(sent)
        self.delivered += 1
        return value

    def throw(self, kind: Any, thrown: Any = None, tb: Any = None) -> Any:
        # ``yield from`` passes (type, value, traceback); the one-argument form is the one
        # that is not deprecated
        value = self._gen.throw(thrown if thrown is not None else kind)
        self.delivered += 1
        return value

    def close(self) -> None:
        self._gen.close()


def _retry_generator(
    pol: Retry, fn: Callable[P, Generator[Any, Any, Any]]
) -> Callable[P, Generator[Any, Any, Any]]:
    """Retry a generator function until it yields its first item; after that an error
    propagates (with a note), since a new attempt would repeat what was already delivered."""

    def first_item(*args: P.args, **kwargs: P.kwargs) -> tuple[Any, Any, bool]:
        """One attempt: a new generator and its first item, or its return value if it ended."""
        gen = fn(*args, **kwargs)
        try:
            return gen, next(gen), False
        except StopIteration as stop:
            return gen, stop.value, True

    start = _retry_sync(pol, first_item)

    @functools.wraps(fn)
    def generator_wrapper(*args: P.args, **kwargs: P.kwargs) -> Generator[Any, Any, Any]:
        gen, value, ended = start(*args, **kwargs)
        if ended:
            return value
        resumed = _Resumed(gen, value)
        try:
            return (yield from resumed)  # send(), throw() and close() reach gen
        except Exception as exc:
            exc.add_note(_AFTER_FIRST.format(resumed.delivered))
            raise
        finally:
            gen.close()

    return generator_wrapper


def _retry_async_generator(
    pol: Retry, fn: Callable[P, AsyncGenerator[Any, Any]]
) -> Callable[P, AsyncGenerator[Any, Any]]:
    """The async twin of ``_retry_generator``: retried until the first item, values sent with
    ``asend`` and exceptions thrown in with ``athrow`` reach the inner generator."""

    async def first_item(*args: P.args, **kwargs: P.kwargs) -> tuple[Any, Any, bool]:
        """One attempt: a new async generator and its first item, unless it ended at once."""
        agen = fn(*args, **kwargs)
        try:
            return agen, await agen.__anext__(), False
        except StopAsyncIteration:
            return agen, None, True

    start = _retry_async(pol, first_item)

    @functools.wraps(fn)
    async def async_generator_wrapper(
        *args: P.args, **kwargs: P.kwargs
    ) -> AsyncGenerator[Any, Any]:
        agen, value, ended = await start(*args, **kwargs)
        if ended:
            return
        delivered = 0
        try:
            while True:
                delivered += 1
                try:
                    sent = yield value
                except GeneratorExit:
                    raise
                except BaseException as thrown:  # athrow(): the inner generator handles it
                    step = agen.athrow(thrown)
                else:
                    step = agen.asend(sent)
                try:
                    value = await step
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    exc.add_note(_AFTER_FIRST.format(delivered))
                    raise
        finally:
            await agen.aclose()

    return async_generator_wrapper
