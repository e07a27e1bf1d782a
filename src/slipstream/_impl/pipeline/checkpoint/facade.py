"""``Checkpoint``: the per-item state of pipeline runs, in front of one ``CheckpointStore``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, final

from ...core.checks import check_seconds
from ...core.resource import AsyncResource
from .postgres import PostgresStore
from .records import FailedItem, Owner, RunState, RunStatus
from .sqlite import SqliteStore
from .states import STALE_BEATS, Heartbeats, judge_state, this_owner, wall_time
from .store import CheckpointStore

__all__ = ["Checkpoint"]

_STATUSES = ("done", "failed", "skipped")


def _store_for(target: str) -> CheckpointStore:
    """The store a target names: a ``postgresql://`` URL, else a SQLite file path."""
    if target.startswith(("postgresql://", "postgres://")):
        return PostgresStore(target)
    return SqliteStore(Path(target))


@final
class Checkpoint(AsyncResource):
    """The per-item state of pipeline runs, in a SQLite file or a PostgreSQL database.

    Args:
        target: a file path (SQLite, created if missing) or a ``postgresql://`` URL (needs
            ``slipstream[postgres]``; the tables ``slipstream_runs`` and ``slipstream_items``
            are created if missing, and the owner columns added to a table that lacks them).
        heartbeat_s: how often a running run's heartbeat is renewed. A ``running`` run seen
            from another machine reads ``interrupted`` once its heartbeat is older than
            ``4 * heartbeat_s`` (on the same machine the process itself is checked).

    Use ``async with ss.Checkpoint(path) as cp:``; a ``Pipeline`` opens it for you.

    Raises (on open):
        CheckpointError: the file is not a checkpoint, is damaged or has a format this version
            does not know; or the database cannot be reached. Nothing is reset.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] = "slipstream-checkpoint.sqlite",
        *,
        heartbeat_s: float = 15.0,
    ) -> None:
        if not isinstance(target, str | os.PathLike):
            raise TypeError(
                f"'target' must be a file path or a postgresql:// URL, got {type(target).__name__}"
            )
        self.heartbeat_s = check_seconds("heartbeat_s", heartbeat_s)
        self.target = str(target)
        self._store = _store_for(self.target)
        self._opening: asyncio.Task[None] | None = None
        self._open = False
        self._writes = 0  # on the event loop's thread
        self._beats = 0  # on heartbeat threads
        self._heartbeats = Heartbeats()

    @property
    def writes(self) -> int:
        """Transactions written (items, run states, heartbeats): the database round trips."""
        return self._writes + self._beats

    def __repr__(self) -> str:
        return f"Checkpoint({self.target!r})"

    async def __aenter__(self) -> Checkpoint:
        await self.open()
        return self

    async def open(self) -> None:
        """Open (and check) the store; a no-op when it is open already. Concurrent calls share
        one opening; a PostgreSQL pool left by an event loop that has closed is replaced."""
        loop = asyncio.get_running_loop()
        if self._open and not self._store.is_open():
            self._open = False  # its connections died with their loop: open again on this one
        if self._open:
            return
        opening = self._opening
        if opening is None or opening.get_loop() is not loop:
            opening = self._opening = loop.create_task(self._open_store())
            opening.add_done_callback(_retrieve)  # a caller cancelled meanwhile: not logged
        try:
            await asyncio.shield(opening)
        finally:
            if opening.done() and self._opening is opening:
                self._opening = None

    async def _open_store(self) -> None:
        await self._store.open()
        self._open = True

    async def aclose(self) -> None:
        self._open = False
        self._heartbeats.stop_all()
        await self._store.close()

    # -- runs --------------------------------------------------------------------------------

    async def start_run(self, run_id: str, info: dict[str, Any] | None = None) -> None:
        """Record that ``run_id`` is running in this process (created on first use, kept on
        resume), and keep its heartbeat until ``set_state`` records another state."""
        now = wall_time()
        owner = this_owner()
        self._writes += 1
        await self._store.start_run(run_id, info or {}, owner, now)
        self._keep_alive(run_id, owner)

    def _keep_alive(self, run_id: str, owner: Owner) -> None:
        write = self._store.heartbeat(run_id, owner)

        def beat() -> bool:
            if not write(wall_time()):
                return False
            self._beats += 1
            return True

        self._heartbeats.start(run_id, beat, self.heartbeat_s)

    async def set_state(self, run_id: str, state: RunState) -> None:
        """Record the run's state; any state but ``running`` ends its heartbeat here."""
        if state != "running":
            self._heartbeats.stop(run_id)
        self._writes += 1
        await self._store.set_state(run_id, state, wall_time())

    # -- items -------------------------------------------------------------------------------

    async def mark(
        self,
        run_id: str,
        status: str,
        entries: Iterable[tuple[str, str, str, str]],
    ) -> None:
        """Record ``(key, stage, error, detail)`` entries as ``status``, in one transaction."""
        if status not in _STATUSES:
            raise ValueError(f"'status' must be one of {_STATUSES}, got {status!r}")
        now = wall_time()
        rows = [
            (run_id, key, status, stage, error, detail, now)
            for key, stage, error, detail in entries
        ]
        if rows:
            self._writes += 1
            await self._store.mark(rows)

    async def mark_done(self, run_id: str, keys: Iterable[str]) -> None:
        await self.mark(run_id, "done", ((k, "", "", "") for k in keys))

    async def keys(self, run_id: str, status: str) -> set[str]:
        """The keys of ``run_id`` with ``status``."""
        return await self._store.keys(run_id, status)

    async def failures(self, run_id: str) -> list[FailedItem]:
        """The failed items of ``run_id``, with their stage, error and raw detail."""
        return await self._store.failures(run_id)

    async def status(self, run_id: str) -> RunStatus | None:
        """The run's counts and state; None for a run this checkpoint has never seen. A run
        recorded as ``running`` whose process is gone reads ``interrupted``."""
        stored = await self._store.run(run_id)
        if stored is None:
            return None
        recorded, process = stored
        state = judge_state(
            recorded.state,
            pid=recorded.pid,
            process=process,
            heartbeat=recorded.heartbeat,
            updated=recorded.updated,
            now=wall_time(),
            stale_s=STALE_BEATS * self.heartbeat_s,
        )
        return recorded if state == recorded.state else replace(recorded, state=state)

    async def runs(self) -> list[str]:
        """Every run id, oldest first."""
        return await self._store.runs()


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
