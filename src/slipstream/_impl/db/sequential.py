"""``ss.SequentialLoadWarning``: a DataLoader awaited one key at a time, found at run time.

``for user in users: await loader.load(user.id)`` waits for each key's batch before it loads the
next key, so every batch holds one key: one ``batch_fn`` call per key, the N+1 the loader was
meant to remove, plus the loader's own dispatch cost on top (slower than no loader at all).
Nothing fails, so nothing says so; this module says so, once per call site per loader.

The check costs nothing on batched loads: it runs only when a batch of exactly one key, with one
waiter, is dispatched (``DataLoader._dispatch``). It then finds the task awaiting that key (the
future's done callback is the task's wake-up method) and the line that awaits it (the innermost
coroutine frame of that task outside asyncio and slipstream). A warning is given when
``SEQUENTIAL_BATCHES`` batches of one key in a row come from the same line in the same task,
each dispatched no later than ``_GAP_FACTOR`` times the previous one's duration after it ended
(the task spends most of its time waiting for one-key batches). A request that loads one key
makes one such batch; concurrent loads make one batch of many keys; a worker that loads one key
per message and waits for messages in between (``await queue.get()``) has gaps far longer than
its batches: none of them is reported. Under an error filter (``-W error``) the warning is
raised at the user's await of that load (its future gets it); the batch still runs.
"""

from __future__ import annotations

import asyncio
import os
import warnings
import weakref
from types import FrameType
from typing import Any, final

from ..core.errors import SlipstreamError

__all__ = ["SEQUENTIAL_BATCHES", "SequentialLoadWarning", "SequentialWatch"]

SEQUENTIAL_BATCHES = 8  # one-key batches in a row from one line of one task before the warning
_GAP_FACTOR = 4.0  # a later batch counts if it starts within 4x the previous one's duration
_MAX_DEPTH = 64  # coroutine frames walked at most (a recursive await chain)
_ASYNCIO = os.path.dirname(asyncio.__file__) + os.sep
_SLIPSTREAM = os.path.dirname(os.path.dirname(os.path.dirname(__file__))) + os.sep


@final
class SequentialLoadWarning(SlipstreamError, UserWarning):
    """A ``DataLoader`` was awaited one key at a time, so every batch held one key.

    Given once per call site per loader (and, under the default warnings filter, once per call
    site per process), at the line that awaits ``load``. Load the keys together instead:
    ``await loader.load_many(keys)``, or make the loads concurrent
    (``asyncio.gather(*(loader.load(k) for k in keys))``, or ``ss.map`` over an async function
    that loads). Silence it with
    ``warnings.filterwarnings("ignore", category=ss.SequentialLoadWarning)``.
    """


def _waiter(future: asyncio.Future[Any]) -> asyncio.Task[Any] | None:
    """The task awaiting ``future``: a task registers its wake-up method as a done callback."""
    for callback, _context in getattr(future, "_callbacks", None) or ():
        task = getattr(callback, "__self__", None)
        if isinstance(task, asyncio.Task):
            return task
    return None


def _site(task: asyncio.Task[Any]) -> tuple[FrameType, FrameType | None] | None:
    """The innermost frame of the task's await chain outside asyncio and slipstream (the line
    awaiting the load), and the frame that called it (shown as "called from")."""
    chain: list[FrameType] = []
    coro: Any = task.get_coro()
    while coro is not None and len(chain) < _MAX_DEPTH:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        chain.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    user = [
        f for f in chain if not f.f_code.co_filename.startswith((_ASYNCIO, _SLIPSTREAM))
    ] or chain
    if not user:
        return None
    return user[-1], user[-2] if len(user) > 1 else None


@final
class SequentialWatch:
    """One per loader, made at its first one-key batch: the current streak of one-key batches
    (which task, which line, how many, when the last one started and ended) and the lines
    already warned about."""

    __slots__ = ("count", "ended", "site", "started", "task", "warned")

    def __init__(self) -> None:
        self.task: weakref.ref[asyncio.Task[Any]] | None = None
        self.site: tuple[str, int] = ("", 0)
        self.count = 0
        self.started = self.ended = 0.0
        self.warned: set[tuple[str, int]] = set()

    def single(
        self, name: str, future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop
    ) -> None:
        """A batch of one key, awaited by ``future`` alone, is being dispatched."""
        task = _waiter(future)
        found = _site(task) if task is not None else None
        if task is None or found is None:
            self.count = 0
            return
        frame, caller = found
        site = (frame.f_code.co_filename, frame.f_lineno)
        now = loop.time()
        same = self.task is not None and self.task() is task and self.site == site
        if same and now - self.ended <= _GAP_FACTOR * (self.ended - self.started):
            self.count += 1
        else:
            self.task, self.site, self.count = weakref.ref(task), site, 1
        self.started = self.ended = now
        future.add_done_callback(self._ended)
        if self.count >= SEQUENTIAL_BATCHES and site not in self.warned:
            self.warned.add(site)
            try:
                _warn(name, self.count, frame, caller)
            except SequentialLoadWarning as exc:  # a filter made it an error: raise it there
                future.set_exception(exc)
            except Exception as exc:  # a failing warnings hook must not fail the batch
                future.get_loop().call_exception_handler(
                    {"message": "SequentialLoadWarning could not be shown", "exception": exc}
                )

    def _ended(self, future: asyncio.Future[Any]) -> None:
        self.ended = future.get_loop().time()


def _warn(name: str, count: int, frame: FrameType, caller: FrameType | None) -> None:
    where = f"{frame.f_code.co_filename}:{frame.f_lineno}"
    via = (
        f", called from {caller.f_code.co_filename}:{caller.f_lineno}" if caller is not None else ""
    )
    message = (
        f"DataLoader {name!r}: {count} loads in a row at {where} (in {frame.f_code.co_name}"
        f"{via}) each went alone in a batch of one key: each load is awaited before the next "
        "one is made, so this is one batch_fn call per key, slower than no loader at all"
        "\nHINT: load the keys together, `await loader.load_many(keys)`, or concurrently, "
        "`await asyncio.gather(*(loader.load(k) for k in keys))` (or `ss.map` over an async "
        "function that loads)"
    )
    module_globals = frame.f_globals
    warnings.warn_explicit(
        message,
        SequentialLoadWarning,
        frame.f_code.co_filename,
        frame.f_lineno,
        module=module_globals.get("__name__"),
        registry=module_globals.setdefault("__warningregistry__", {}),
    )
