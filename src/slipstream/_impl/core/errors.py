"""Every error slipstream raises on its own account.

The tree is shallow on purpose::

    SlipstreamError
     ├── CircuitOpen          a breaker refused the call (fast, no call was made)
     ├── ConfigError          a bad scanner setting ([tool.slipstream.scan], flags, baseline;
     │                        also a ValueError)
     ├── InputError           the input iterable raised midway; carries the outcomes so far
     ├── ItemCancelled        an item's call raised CancelledError while its map was not cancelled
     ├── FailedItems          an ExceptionGroup of every failed item, on request
     ├── RegistryClosed       a closed registry was asked for a client (also a RuntimeError)
     ├── FlushFailed          a batch writer could not write some rows; carries them
     ├── CommitOutcomeUnknown a COMMIT's reply was lost and could not be checked (also a
     │                        ConnectionError; defined in core/transient.py)
     ├── TaskSetFull          a TaskSet with policy="reject" was full
     ├── CheckpointError      a checkpoint store is unusable (damaged, foreign, unreachable)
     ├── PipelineError        a pipeline cannot start (a bad sink, source or endpoint)
     ├── RemoteError          a Dask worker's exception that could not travel back as itself
     ├── NotReady             raised by a poll's check: the job is not done yet (a signal)
     ├── PollTimeout          a poll's deadline passed before the job was done (also a
     │                        TimeoutError); carries the last state
     ├── SequentialLoadWarning a DataLoader was awaited one key at a time (also a
     │                        UserWarning; defined in db/sequential.py)
     └── Skip                 raised by a stage: record the item as skipped, with a reason

Bad arguments raise the builtin ``ValueError`` / ``TypeError`` with the parameter's name, and
errors raised by user functions are carried as they are (never wrapped) inside outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .outcome import Outcome

__all__ = [
    "CheckpointError",
    "CircuitOpen",
    "ConfigError",
    "FailedItems",
    "FlushFailed",
    "InputError",
    "ItemCancelled",
    "NotReady",
    "PipelineError",
    "PollTimeout",
    "RegistryClosed",
    "RemoteError",
    "RowsRejected",
    "Skip",
    "SlipstreamError",
    "TaskSetFull",
    "describe_shape",
]


class SlipstreamError(Exception):
    """Base class of the errors slipstream raises itself."""


class CircuitOpen(SlipstreamError):
    """A circuit breaker refused a call because the protected service is failing.

    Attributes:
        name: the breaker's name.
        retry_after_s: seconds until the breaker lets a probe through (0 when half-open and a
            probe is already in flight).
    """

    # One per refused item (an open breaker refuses thousands a second): slots, not a __dict__
    # each, so a refusal allocates two objects fewer for the allocator and the collector.
    __slots__ = ("name", "retry_after_s")

    def __init__(self, name: str, retry_after_s: float) -> None:
        # Raised on the fast-fail path: keep it cheap, format the message only when shown.
        super().__init__(name, retry_after_s)
        self.name = name
        self.retry_after_s = retry_after_s

    def __reduce__(self) -> tuple[Any, ...]:
        # its fields are slots, not __dict__ entries: say how to rebuild it, so pickle and
        # tblib (which Dask installs, and which rebuilds "busted" exceptions from __dict__)
        # keep them
        return (type(self), (self.name, self.retry_after_s), self.__dict__ or None)

    def __str__(self) -> str:
        return f"circuit {self.name!r} is open; next probe in {self.retry_after_s:.3f}s"


class InputError(SlipstreamError):
    """The input iterable raised while being read.

    The original exception is ``__cause__``. ``outcomes`` holds one outcome for every item taken
    before the failure, so no work is lost.
    """

    def __init__(self, cause: BaseException, outcomes: Sequence[Outcome[Any, Any]] = ()) -> None:
        self.outcomes = list(outcomes)
        super().__init__(
            f"the input iterable raised {type(cause).__name__}: {cause} "
            f"(after {len(self.outcomes)} items were taken; their outcomes are kept)"
        )
        self.__cause__ = cause


class ItemCancelled(SlipstreamError):
    """An item's call raised ``CancelledError`` although nobody cancelled the map: it awaited
    something that someone else cancelled (a shared future, a task it did not own).

    That is the item's failure, not the map's cancellation, so it is this item's outcome; the
    original ``CancelledError`` is ``__cause__``. It is wrapped (the one exception to "carried
    as it is") because re-raising a bare ``CancelledError`` from ``outcome.value`` would read as
    the *caller's* cancellation to ``TaskGroup`` and ``asyncio.timeout``, and an
    ``ExceptionGroup`` (``FailedItems``) cannot hold it.
    """

    def __init__(self, cause: BaseException | None = None) -> None:
        text = f": {cause}" if cause is not None and str(cause) else ""
        super().__init__(f"the call raised CancelledError{text}, but the map was not cancelled")
        self.__cause__ = cause

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), ())


class FailedItems(ExceptionGroup[Exception], SlipstreamError):
    """All failures of a map, raised on request (``Results.raise_failures()``).

    ``outcomes`` holds the failed outcomes, aligned with ``exceptions``.
    """

    outcomes: list[Outcome[Any, Any]]

    def __new__(
        cls, message: str, exceptions: Sequence[Exception], outcomes: Sequence[Outcome[Any, Any]]
    ) -> FailedItems:
        self = super().__new__(cls, message, exceptions)
        self.outcomes = list(outcomes)
        return self

    def __init__(
        self, message: str, exceptions: Sequence[Exception], outcomes: Sequence[Outcome[Any, Any]]
    ) -> None:
        super().__init__(message, exceptions)

    def derive(self, excs: Sequence[Exception]) -> FailedItems:  # type: ignore[override]  # keep our type on split()
        keep = {id(e) for e in excs}
        return FailedItems(self.message, excs, [o for o in self.outcomes if id(o.error) in keep])


class RegistryClosed(SlipstreamError, RuntimeError):
    """A closed ``Registry`` was asked for a client."""

    def __init__(self, registry: str, name: str) -> None:
        self.registry = registry
        self.name = name
        super().__init__(f"registry {registry!r} is closed; cannot provide {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.registry, self.name))


class FlushFailed(SlipstreamError):
    """A batch writer could not write some rows (the database stayed unreachable).

    ``rows`` holds them, in order, to retry or store elsewhere; ``__cause__`` is the last error.
    """

    def __init__(self, rows: Sequence[Any], cause: BaseException | None) -> None:
        self.rows = list(rows)
        reason = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        super().__init__(f"{len(self.rows)} row(s) were not written{reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.rows, None))


class RowsRejected(SlipstreamError):
    """A flush rejects the shape of the rows, not one bad row: the first and the last row of a
    batch, written alone, each raised the same kind of shape error (``TypeError``, a DB-API
    ``ProgrammingError`` / ``InterfaceError``...), and every row of the batch has their shape.
    Bisecting would cost about four flushes a row and end with every row failed; the writer
    stops at this batch instead, with nothing of it written. ``rows`` is the batch, ``error``
    the first row's error (also ``__cause__``)."""

    def __init__(self, rows: Sequence[Any], error: BaseException, sample: Any) -> None:
        self.rows = list(rows)
        self.error = error
        self.sample = sample  # the first row, as the flush saw it
        self.__cause__ = error
        super().__init__(
            f"the flush rejects rows shaped like these, not one bad row: the first and the last "
            f"of a batch of {len(self.rows)}, written alone, each raised "
            f"{type(error).__name__}: {error}; every row of the batch is {describe_shape(sample)}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.rows, self.error, self.sample))


def describe_shape(row: Any) -> str:
    """A row's shape in words: ``an int``, ``a tuple of 2 values (str, int)``,
    ``a dict with keys 'id', 'name'``."""
    name = type(row).__name__
    if isinstance(row, Mapping):
        keys = ", ".join(repr(k) for k in list(row)[:8]) + (", ..." if len(row) > 8 else "")
        return f"a {name} with keys {keys}" if row else f"an empty {name}"
    if isinstance(row, tuple | list):
        types = ", ".join(type(v).__name__ for v in row[:8]) + (", ..." if len(row) > 8 else "")
        return f"a {name} of {len(row)} value(s) ({types})"
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"{article} {name}"


class TaskSetFull(SlipstreamError):
    """``TaskSet.spawn`` with ``policy="reject"`` while ``limit`` tasks run."""


class CheckpointError(SlipstreamError):
    """A checkpoint store cannot be used: the file is not a checkpoint, is damaged, has another
    format, or the database is unreachable. The store is never reset to get past this."""


class PipelineError(SlipstreamError):
    """A pipeline cannot start: its sink, source or a stage's preflight check failed. Raised
    before any item is taken, so nothing is half done."""


class Skip(SlipstreamError):
    """Raise from a stage to record the item as skipped (not failed) with ``reason``: a
    missing asset, an empty document. Skipped items are not retried."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class RemoteError(SlipstreamError):
    """An exception raised on a worker that could not travel back as itself (not picklable).

    ``type_name`` and ``detail`` keep what it said; the message starts with the type's name.
    """

    def __init__(self, type_name: str, message: str, detail: str = "") -> None:
        self.type_name = type_name
        self.detail = detail
        super().__init__(f"{type_name}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        message = str(self).removeprefix(f"{self.type_name}: ")
        return (type(self), (self.type_name, message, self.detail))


class ConfigError(SlipstreamError, ValueError):
    """A bad value in ``[tool.slipstream.scan]``, on the command line or in a baseline file.

    ``key`` names what was wrong (``"min-severity"``, ``"--select"``), ``source`` where it
    came from (a file path, or ``"the command line"``)."""

    def __init__(self, key: str, problem: str, source: str) -> None:
        self.key = key
        self.problem = problem
        self.source = source
        super().__init__(f"{key}: {problem} ({source})")


class NotReady(SlipstreamError):
    """Raise from a ``ss.poll`` check to say "not done yet": a signal, never a failure.

    A poll never counts it as an error and never spends a retry budget on it. The next check
    waits ``retry_after_s`` when given, else the ``Retry-After`` header of ``response`` (any
    object with ``.headers``: an httpx, requests or aiohttp response), else the poll's backoff.

    Args:
        retry_after_s: seconds until the job is worth asking about again, or None.
        state: what the check saw (kept as the poll's last state, shown by ``PollTimeout``).
        response: a response whose ``Retry-After`` header (seconds or an HTTP date) is read.
    """

    def __init__(
        self, retry_after_s: float | None = None, *, state: Any = None, response: Any = None
    ) -> None:
        self.retry_after_s = retry_after_s
        self.state = state
        self.response = response
        shown = (
            f" (retry after {retry_after_s:g}s)" if isinstance(retry_after_s, int | float) else ""
        )
        super().__init__(f"not ready yet{shown}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_not_ready, (self.retry_after_s, self.state))


def _not_ready(retry_after_s: float | None, state: Any) -> NotReady:
    return NotReady(retry_after_s, state=state)


class PollTimeout(SlipstreamError, TimeoutError):
    """A poll's ``deadline_s`` passed and the job was still not done.

    Attributes:
        state: the last state the check returned (or the ``state`` of its last ``NotReady``).
        polls: checks made by this poll.
        waited_s: seconds this poll slept between checks.
        deadline_s: the deadline that passed.
    """

    def __init__(self, state: Any, *, polls: int, waited_s: float, deadline_s: float) -> None:
        self.state = state
        self.polls = polls
        self.waited_s = waited_s
        self.deadline_s = deadline_s
        super().__init__(
            f"still not done after {polls} check(s) and {waited_s:.3f}s of waiting "
            f"(deadline_s={deadline_s:g}); last state: {_short(state)}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_poll_timeout, (self.state, self.polls, self.waited_s, self.deadline_s))


def _poll_timeout(state: Any, polls: int, waited_s: float, deadline_s: float) -> PollTimeout:
    return PollTimeout(state, polls=polls, waited_s=waited_s, deadline_s=deadline_s)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
