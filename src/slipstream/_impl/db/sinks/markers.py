"""Exactly-once markers, written once for every flush that has them (asyncpg, SQLAlchemy sync
and async): the marker table's SQL, its bookkeeping, and the protocol that settles a batch
whose COMMIT reply was lost (``exactly_once``), as steps (``steps.py``) each backend drives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ...core.checks import check_seconds
from ...core.transient import CommitOutcomeUnknown, is_connection_error
from .sql import batch_id_of, ident, logger
from .steps import Steps

__all__ = [
    "CHECK_LOCK_TIMEOUT",
    "DEFAULT_MARKER_TABLE",
    "RETENTION_S",
    "Attempt",
    "Markers",
    "exactly_once",
    "markers_of",
]

R = TypeVar("R")
DEFAULT_MARKER_TABLE = "slipstream_batches"
RETENTION_S = 7 * 86_400.0
CHECK_LOCK_TIMEOUT = "5s"  # a check waits this long for an earlier attempt still in progress
_CHECK_ATTEMPTS = 2
_ACKED_KEPT = 16  # acknowledged markers are deleted 16 at a time (one statement, not 16)
_DIALECTS = ("postgresql", "sqlite")


@dataclass
class Markers:
    """One flush function's markers: where they live, whether the table is checked, and the ids
    whose COMMIT was acknowledged (deleted by a later transaction)."""

    table: str  # quoted
    name: str  # as given
    retention_s: float
    ready: bool = False
    acked: set[str] = field(default_factory=set)

    # -- SQL text: ``value``, ``ids`` and ``seconds`` are the backend's placeholders ----------

    def ddl(self, dialect: str) -> str:
        when = "timestamptz NOT NULL DEFAULT now()"
        if dialect == "sqlite":
            when = "TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP"
        return (
            f"CREATE TABLE IF NOT EXISTS {self.table} "
            f"(batch_id text PRIMARY KEY, committed_at {when})"
        )

    def mark_sql(self, value: str) -> str:
        """Insert one marker; a marker already there (the batch committed before) inserts none,
        and waits for an earlier attempt still in progress, so the two cannot both commit."""
        return f"INSERT INTO {self.table} (batch_id) VALUES ({value}) ON CONFLICT DO NOTHING"

    def delete_sql(self, ids: str) -> str:
        """Delete the markers ``ids`` names: a parenthesised list, or an expanding parameter."""
        return f"DELETE FROM {self.table} WHERE batch_id IN {ids}"

    def sweep_sql(self, dialect: str, seconds: str) -> str:
        """Delete the markers older than the retention (``seconds``: PostgreSQL a number of
        seconds, SQLite a ``'-N seconds'`` modifier)."""
        since = f"datetime('now', {seconds})"
        if dialect != "sqlite":
            since = f"now() - make_interval(secs => {seconds})"
        return f"DELETE FROM {self.table} WHERE committed_at < {since}"

    @staticmethod
    def check_dialect(dialect: str) -> None:
        if dialect not in _DIALECTS:
            raise TypeError(
                f"exactly-once markers are supported on PostgreSQL and SQLite, not {dialect!r}"
                "\nHINT: pass marker_table=None (at-least-once; upsert so retries are harmless)"
            )

    # -- bookkeeping ------------------------------------------------------------------------

    def stale(self) -> list[str]:
        """The acknowledged markers the next transaction deletes (none until there are 16)."""
        return list(self.acked) if len(self.acked) >= _ACKED_KEPT else []

    def forget(self, deleted: list[str]) -> None:
        self.acked.difference_update(deleted)

    def create_failed(self, exc: Exception) -> None:
        """``CREATE TABLE`` raised ``exc``: fine when another session created the same table
        at the same moment; else ``exc`` is raised, saying how to create the table by hand."""
        if _created_concurrently(exc):
            return
        if not is_connection_error(exc):
            exc.add_note(
                f"slipstream: the exactly-once marker table {self.name!r} could not be created: "
                f"create it once with '{self.ddl('postgresql')}'"
                "\nHINT: or pass marker_table=None for at-least-once writes (then upsert with "
                "conflict=[...] so a retried batch is not duplicated)"
            )
        raise exc


@dataclass
class Attempt:
    commit_sent: bool = False  # from here on, an error leaves the outcome unknown
    done: bool = False  # the batch is in (committed now, or found committed before)

    def already_committed(self, batch_id: str) -> None:
        """The marker was there: an earlier attempt committed this batch."""
        logger.info("slipstream: batch %s was already committed; not written again", batch_id)
        self.done = True


def _created_concurrently(exc: BaseException) -> bool:
    """True when CREATE TABLE IF NOT EXISTS lost a race with another session creating the same
    table (PostgreSQL raises a unique violation on its catalog, or duplicate_table)."""
    for candidate in (exc, getattr(exc, "orig", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code in ("23505", "42P07"):
            return True
    return False


def markers_of(marker_table: str | None, marker_retention_s: float) -> Markers | None:
    retention = check_seconds("marker_retention_s", marker_retention_s)
    if marker_table is None:
        return None
    return Markers(ident(marker_table, "marker_table"), marker_table, retention)


def exactly_once(
    markers: Markers | None,
    batch_id: str | None,
    rows: list[Any],
    records_of: Callable[[list[Any]], list[R]],
    *,
    prepare: Callable[[], Steps[None]],
    attempt: Callable[[list[R], str, Attempt], Steps[None]],
    probe: Callable[[str], Steps[bool]],
) -> Steps[None]:
    """Write ``rows`` (as ``records_of`` makes them) exactly once, under ``batch_id`` (checked)
    or a fresh id: set the marker table up on first use (``prepare``), make one ``attempt``;
    after an error that came once the COMMIT was sent, settle the outcome with ``probe`` (is
    the marker in, seen from a fresh connection?): committed is success, not committed raises
    the error (a retry is safe), and a probe that fails twice raises ``CommitOutcomeUnknown``
    (a retry with the same ``batch_id`` settles it)."""
    bid = batch_id_of(batch_id)
    records = records_of(rows)
    if not records:
        return
    if markers is not None and not markers.ready:
        yield from prepare()
        markers.ready = True
    state = Attempt()
    try:
        yield from attempt(records, bid, state)
    except Exception as exc:
        if not state.commit_sent:
            raise  # nothing was committed: a retry is safe, bisecting too
        if markers is None:
            raise  # at-least-once, as documented
        try:
            done = yield from _committed(bid, probe)
        except CommitOutcomeUnknown as unknown:
            raise unknown from exc
        if not done:
            raise  # rolled back: a retry is safe
        logger.info(
            "slipstream: the COMMIT of batch %s lost its reply (%s) but took effect",
            bid,
            type(exc).__name__,
        )
    if markers is not None:
        markers.acked.add(bid)


def _committed(batch_id: str, probe: Callable[[str], Steps[bool]]) -> Steps[bool]:
    problem: BaseException | None = None
    for _ in range(_CHECK_ATTEMPTS):
        try:
            return (yield from probe(batch_id))
        except Exception as exc:
            problem = exc
    raise CommitOutcomeUnknown(batch_id, f"the check failed: {type(problem).__name__}: {problem}")
