"""What a checkpoint keeps and hands out: run states, run statuses, failed items, and the one
text format of a failure (``describe_error``, ``format_failure``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, final

__all__ = [
    "FailedItem",
    "ItemRow",
    "Owner",
    "RunState",
    "RunStatus",
    "StoredRun",
    "describe_error",
    "error_detail",
    "format_failure",
]

_MAX_CHAIN = 8  # causes shown per failure

# A run's state: running (its process is alive, or was when last seen), paused (stopped by
# pause() or a signal, resumable), finished, or interrupted (recorded as running, but the
# process is gone: killed, crashed).
RunState = Literal["running", "paused", "finished", "interrupted"]

# One item's record as a store writes it: (run_id, key, status, stage, error, detail, updated).
ItemRow = tuple[str, str, str, str, str, str, float]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class RunStatus:
    """Counts of one run's items by status, and the run's state.

    ``state`` is ``running``, ``paused``, ``finished`` or ``interrupted``: a run recorded as
    running whose process is gone (killed, crashed) reads ``interrupted``. ``host``, ``pid``
    and ``heartbeat`` (epoch seconds) say which process ran it last (None for a run recorded by
    a version that did not keep them).
    """

    run_id: str
    state: RunState
    done: int
    failed: int
    skipped: int
    created: float
    updated: float
    info: dict[str, Any]
    host: str | None = None
    pid: int | None = None
    heartbeat: float | None = None


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class FailedItem:
    """A failed item as the checkpoint keeps it; ``error`` is ``describe_error``'s text."""

    key: str
    stage: str
    error: str
    detail: str

    def __str__(self) -> str:
        return format_failure(self.key, self.stage, self.error)


@final
class Owner(NamedTuple):
    """The process running a run: its host, its pid, and ``process``, a token naming that
    very process (this machine's boot and pid namespace, and the process's start time), or
    None where there is no /proc to make one from."""

    host: str
    pid: int
    process: str | None


@final
class StoredRun(NamedTuple):
    """A run as its store recorded it: ``status.state`` is the recorded state, not yet judged
    against the owner's liveness, and ``process`` is the owner's token (see ``Owner``)."""

    status: RunStatus
    process: str | None


def _one_error(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def describe_error(exc: BaseException) -> str:
    """Why an item failed, in full: ``Type: message``, then one line per note
    (``exc.__notes__``) and per cause (``__cause__``, else ``__context__`` unless suppressed
    with ``raise ... from None``), each with its own notes. The one format of a failure in
    ``RunReport.failures``, the checkpoint and ``slipstream status``."""
    lines: list[str] = []
    seen: set[int] = set()
    previous = ""
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(current))
        text = _one_error(current)
        if not lines:
            lines.append(text)
        elif text != previous:  # a wrapper re-raising the same error says nothing new
            lines.append(f"  caused by: {text}")
        previous = text
        notes: list[str] = []
        for note in getattr(current, "__notes__", None) or ():
            if isinstance(note, str) and note not in notes:  # a reused exception: noted again
                notes.append(note)
        lines.extend(f"  note: {note}" for note in notes)
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    if current is not None and id(current) not in seen:
        lines.append("  caused by: ...")
    return "\n".join(lines)


def error_detail(exc: BaseException) -> str:
    """The raw ``detail`` of the exception, or of the first cause that has one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        detail = getattr(current, "detail", None)
        if detail is not None and str(detail):
            return str(detail)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return ""


def format_failure(key: str, stage: str, error: str) -> str:
    """One failure for people to read: ``failed KEY at STAGE: error``, with the error's
    further lines (notes, causes: ``describe_error`` indents them) kept under it."""
    first, _, rest = error.partition("\n")
    text = f"failed {key} at {stage}: {first}"
    for line in rest.split("\n") if rest else ():
        text += f"\n{line}" if line.startswith(" ") else f"\n  {line}"
    return text
