"""What a run records about its items: the counts, the checkpoint's marks, the progress reports.

An item ends in one place: done (``mark_done``, only after the sink committed it), failed or
skipped (``record``). Failures and skips are buffered and written to the checkpoint in batches
of ``batch_size``; every outcome updates the progress bar and ``on_progress``. A callback that
raises, or a checkpoint that cannot record committed items, sets ``halted``: the run stops
taking items, commits what it took, and raises that error then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Literal

from ..core.clock import now
from .checkpoint import Checkpoint, FailedItem, describe_error, error_detail
from .report import PipelineProgress
from .stage import _maybe_await

__all__ = ["Ledger", "Mark"]

# An item a stage (or the row builder, or the sink) did not pass on: how the checkpoint keeps it.
Mark = Literal["failed", "skipped"]

# RunReport.failures keeps the first ones only: a run of a million failures stays small.
_MAX_FAILURES = 100


class Ledger:
    """The outcomes of one run, as counted, checkpointed and reported."""

    __slots__ = (
        "_batch_size",
        "_checkpoint",
        "_mark_lock",
        "_marking",
        "_on_progress",
        "_run_id",
        "_started",
        "already_done",
        "bar",
        "callback_error",
        "cp_error",
        "failed",
        "failures",
        "halted",
        "marks",
        "ok",
        "skipped",
        "total",
        "unmarked",
    )

    def __init__(
        self,
        run_id: str,
        checkpoint: Checkpoint | None,
        batch_size: int,
        on_progress: Callable[[PipelineProgress], Any] | None,
        started: float,
    ) -> None:
        self._run_id = run_id
        self._checkpoint = checkpoint
        self._batch_size = batch_size
        self._on_progress = on_progress
        self._started = started
        self.ok = self.failed = self.skipped = self.already_done = 0
        self.total: int | None = None
        self.failures: list[FailedItem] = []
        self.marks: dict[Mark, list[tuple[str, str, str, str]]] = {"failed": [], "skipped": []}
        self.bar: Any = None  # a ProgressBar, with progress=True
        self.halted = False  # stop taking items: the callback or the checkpoint failed
        self.callback_error: BaseException | None = None  # on_progress (or the bar) raised
        self.cp_error: BaseException | None = None  # mark_done failed after a commit
        self.unmarked = 0  # items committed by the sink but not recorded done
        self._marking: asyncio.Task[None] | None = None  # the done marks being written
        self._mark_lock = asyncio.Lock()  # checkpoint writes, one at a time, in order

    async def record(self, status: Mark, key: str, stage: str, exc: BaseException) -> None:
        """An item ``stage`` did not pass on, with its error (a ``Skip``'s reason)."""
        if status == "skipped":
            self.skipped += 1
            text = getattr(exc, "reason", str(exc))
        else:
            self.failed += 1
            text = describe_error(exc)  # notes and causes too: the same text everywhere
        detail = error_detail(exc)
        if status != "skipped" and len(self.failures) < _MAX_FAILURES:
            self.failures.append(FailedItem(key=key, stage=stage, error=text, detail=detail))
        marks = self.marks
        marks[status].append((key, stage, text, detail))
        if len(marks["failed"]) + len(marks["skipped"]) >= self._batch_size:
            await self.commit_marks()
        await self.report_progress()

    async def commit_marks(self) -> None:
        """Write the buffered failures and skips to the checkpoint (dropped without one),
        after the done marks under way."""
        await self.settle_marks()
        cp = self._checkpoint
        if cp is None:
            self.marks = {"failed": [], "skipped": []}
            return
        async with self._mark_lock:  # a done mark started meanwhile waits for these
            for status in ("failed", "skipped"):
                entries, self.marks[status] = self.marks[status], []  # swapped before any await
                await cp.mark(self._run_id, status, entries)

    async def mark_done(self, keys: Sequence[str]) -> None:
        """Items the sink has committed. Nothing that follows is the rows' failure: a
        checkpoint that cannot record them halts the run (they are redone on resume), it
        does not make the writer write them again or bisect them as bad rows."""
        self.ok += len(keys)
        cp = self._checkpoint
        if cp is not None:
            # one mark at a time, in order; this one is written while the sink writes the
            # next batch (the marks of a batch still follow its commit): a batch costs the
            # longer of the two round trips, not their sum
            await self.settle_marks()
            self._marking = asyncio.get_running_loop().create_task(self._mark_done(cp, keys))
        await self.report_progress()

    async def _mark_done(self, cp: Checkpoint, keys: Sequence[str]) -> None:
        async with self._mark_lock:  # one checkpoint write at a time, first come first served
            if self.cp_error is None:
                try:
                    await cp.mark_done(self._run_id, keys)
                except Exception as exc:
                    self.cp_error = exc
                    self.halted = True
                    self.unmarked += len(keys)
            else:
                self.unmarked += len(keys)

    async def settle_marks(self) -> None:
        """Wait until no done mark is under way, including one started while waiting (a
        cancelled wait cancels it: a resumed run redoes those items, and the sink's upsert
        keeps one row each)."""
        while (task := self._marking) is not None:
            await task
            if self._marking is task:
                self._marking = None

    async def report_progress(self) -> None:
        """Update the bar and call ``on_progress``. Never raises: a failing callback halts the
        run (no new items; what was taken is committed) and ``run`` raises its error then, so
        it is never mistaken for the failure of the rows or the item being recorded."""
        if self.callback_error is not None:
            return
        try:
            if self.bar is not None:
                done = self.ok + self.failed + self.skipped + self.already_done
                self.bar.update(done, self.total)
            if self._on_progress is not None:
                await _maybe_await(self._on_progress(self.progress()))
        except Exception as exc:
            self.callback_error = exc
            self.halted = True

    def progress(self) -> PipelineProgress:
        """Where the run stands now."""
        return PipelineProgress(
            run_id=self._run_id,
            ok=self.ok,
            failed=self.failed,
            skipped=self.skipped,
            already_done=self.already_done,
            total=self.total,
            elapsed_s=now() - self._started,
        )
