"""``CheckpointStore``: what a ``Checkpoint`` needs from the database that keeps its records.

A store persists; it decides nothing. The ``Checkpoint`` in front of it checks arguments,
reads the time (``states.wall_time``), names the owner of a run, runs the heartbeat threads,
counts the writes and judges whether a recorded ``running`` run is still alive. A store
writes each call in one transaction, and every method but ``heartbeat``'s beat runs on the
event loop that opened it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .records import FailedItem, ItemRow, Owner, RunState, StoredRun

__all__ = ["CheckpointStore"]


class CheckpointStore(Protocol):
    """The records of pipeline runs and their items, durably: one SQLite file
    (``SqliteStore``) or one PostgreSQL database (``PostgresStore``)."""

    def is_open(self) -> bool:
        """Open, and usable from the running event loop (a connection pool made on an event
        loop that has closed since is not)."""
        ...

    async def open(self) -> None:
        """Create the tables, or check (and migrate) the ones found; raise ``CheckpointError``
        for a database that is not a checkpoint, is damaged, or cannot be reached. Nothing is
        ever reset."""
        ...

    async def close(self) -> None:
        """Release the connections; ``open`` may be called again."""
        ...

    async def start_run(self, run_id: str, info: dict[str, Any], owner: Owner, now: float) -> None:
        """Record ``run_id`` as running, owned by ``owner``, with ``now`` as its update time and
        heartbeat; created with ``now`` as its creation time, or kept (with a new ``info``)."""
        ...

    async def set_state(self, run_id: str, state: RunState, now: float) -> None:
        """Record the run's state and ``now`` as its update time."""
        ...

    async def mark(self, rows: Sequence[ItemRow]) -> None:
        """Record items (``ItemRow``: a row replaces the item's previous record), in one
        transaction."""
        ...

    async def keys(self, run_id: str, status: str) -> set[str]:
        """The keys of ``run_id``'s items recorded with ``status``."""
        ...

    async def failures(self, run_id: str) -> list[FailedItem]:
        """The failed items of ``run_id``, ordered by key."""
        ...

    async def run(self, run_id: str) -> StoredRun | None:
        """The run as recorded, with its item counts; None for a run never recorded."""
        ...

    async def runs(self) -> list[str]:
        """Every run id, oldest first."""
        ...

    def heartbeat(self, run_id: str, owner: Owner) -> Callable[[float], bool]:
        """A beat for ``run_id``, called on the event loop: the returned function may be called
        from any thread, blocks until it has written ``now`` as the heartbeat of the run if it
        is still running and owned by ``owner``, and returns False (nothing written, nothing
        more to write) once the store is closed or its event loop is."""
        ...
