"""Ready-made flush functions for ``BatchWriter``: asyncpg and SQLAlchemy, insert or upsert.

Each call writes its rows in one transaction, **exactly once**, also when the connection dies
around the COMMIT (``pg_terminate_backend``, a failover, a network cut):

- the transaction inserts the batch's id, before its rows, into a small marker table
  (``slipstream_batches(batch_id text PRIMARY KEY, committed_at timestamptz)``, created if
  missing): the marker commits with the rows or not at all;
- ``flush(rows, batch_id=...)``: ``BatchWriter`` passes a stable id per batch, the same on every
  retry. A retry whose marker is already there wrote nothing and returns: the batch committed
  before (``INSERT ... ON CONFLICT DO NOTHING`` also waits for an earlier attempt still in
  progress, so the two cannot both commit);
- an error after the COMMIT was sent (its reply lost) is settled at once on a fresh connection:
  committed means success, not committed means the error is raised and a retry is safe; if even
  the check fails, ``CommitOutcomeUnknown`` (a ``ConnectionError``) is raised, and a retry with
  the same ``batch_id`` settles it;
- an error after the COMMIT returned (releasing the connection to the pool, resetting it) is
  logged, never raised: the rows are in.

Markers stay bounded: once their COMMIT was acknowledged, markers are deleted by a later
transaction of the same flush function, 16 at a time (so at most 16 acknowledged ones are left
per flush function), and markers older than ``marker_retention_s`` (7 days: batches a writer
gave up on, flush functions that stopped) are deleted when a flush function first writes.
``BatchWriter`` and ``Pipeline`` pass the writer's batch ids. Called without ``batch_id`` (a
direct call), a flush makes its own id per call: exactly once unless even the post-COMMIT check
fails. A batch id names one batch: a batch whose
id is already in the marker table is not written. Pass ``marker_table=None`` for no markers
(at-least-once: retried batches are written again unless ``conflict=`` makes them upserts).

``sqlite_flush`` needs no marker: a local SQLite COMMIT either returns or rolls back.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.checks import check_instance, check_seconds
from ..core.transient import CommitOutcomeUnknown, is_connection_error

__all__ = ["BatchFlush", "asyncpg_flush", "new_batch_id", "sqlalchemy_flush", "sqlite_flush"]

logger = logging.getLogger("slipstream.writer")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_BATCH_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
DEFAULT_MARKER_TABLE = "slipstream_batches"
_RETENTION_S = 7 * 86_400.0
_CHECK_LOCK_TIMEOUT = "5s"  # a check waits this long for an earlier attempt still in progress
_CHECK_ATTEMPTS = 2
_ACKED_KEPT = 16  # acknowledged markers are deleted 16 at a time (one statement, not 16)


class BatchFlush(Protocol):
    """A flush function that takes a batch id: ``await flush(rows, batch_id="...")``."""

    def __call__(self, rows: list[Any], batch_id: str | None = None) -> Awaitable[None]: ...


def new_batch_id() -> str:
    """A fresh batch id (32 hex digits)."""
    return uuid.uuid4().hex


def _ident(name: str, what: str) -> str:
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"'{what}' must be a plain SQL identifier, got {name!r}")
    return ".".join(f'"{part}"' for part in name.split("."))


def _names(value: Any, what: str, *, allow_none: bool = False) -> list[str] | None:
    """A list of column names (a single string is refused: it would be read letter by letter)."""
    if value is None and allow_none:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(
            f"'{what}' must be a sequence of column names, got {type(value).__name__} {value!r}"
            + (f'\nHINT: {what}=["{value}"]' if isinstance(value, str) else "")
        )
    for name in value:
        _ident(name, what)
    return list(value)


def _batch_id(batch_id: str | None) -> str:
    if batch_id is None:
        return new_batch_id()
    if not isinstance(batch_id, str):
        raise TypeError(f"'batch_id' must be a str or None, got {type(batch_id).__name__}")
    if not _BATCH_ID.match(batch_id):
        raise ValueError(
            f"'batch_id' must be 1-200 characters from A-Z a-z 0-9 _ . : -, got {batch_id!r}"
        )
    return batch_id


def _record(row: Any, columns: Sequence[str]) -> tuple[Any, ...]:
    if type(row) is tuple and len(row) == len(columns):
        return row  # already a record: the hot path of COPY
    if isinstance(row, Mapping):
        return tuple(row[c] for c in columns)  # a missing column is this row's KeyError
    record = tuple(row)
    if len(record) != len(columns):
        raise ValueError(f"row {row!r} has {len(record)} values for {len(columns)} columns")
    return record


def _insert_sql(
    table: str,
    columns: Sequence[str],
    conflict: Sequence[str] | None,
    update: Sequence[str] | None,
    placeholder: Callable[[int], str],
) -> str:
    """``INSERT`` (or upsert with ``ON CONFLICT``, PostgreSQL and SQLite >= 3.24 alike)."""
    quoted = [_ident(c, "columns") for c in columns]
    placeholders = ", ".join(placeholder(i) for i in range(len(columns)))
    sql = f"INSERT INTO {_ident(table, 'table')} ({', '.join(quoted)}) VALUES ({placeholders})"
    if conflict is None:
        return sql
    keys = ", ".join(_ident(c, "conflict") for c in conflict)
    updated = [c for c in columns if c not in conflict] if update is None else list(update)
    if not updated:
        return sql + f" ON CONFLICT ({keys}) DO NOTHING"
    sets = ", ".join(f"{_ident(c, 'update')} = excluded.{_ident(c, 'update')}" for c in updated)
    return sql + f" ON CONFLICT ({keys}) DO UPDATE SET {sets}"


@dataclass
class _Markers:
    """One flush function's markers: where they live, whether the table is checked, and the ids
    whose COMMIT was acknowledged (deleted by the next transaction)."""

    table: str  # quoted
    name: str  # as given
    retention_s: float
    ready: bool = False
    acked: set[str] = field(default_factory=set)

    def ddl(self, dialect: str) -> str:
        when = "timestamptz NOT NULL DEFAULT now()"
        if dialect == "sqlite":
            when = "TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP"
        return (
            f"CREATE TABLE IF NOT EXISTS {self.table} "
            f"(batch_id text PRIMARY KEY, committed_at {when})"
        )

    def setup_failed(self, exc: BaseException) -> None:
        """Say how to create the marker table by hand (not for a connection error)."""
        if is_connection_error(exc):
            return
        exc.add_note(
            f"slipstream: the exactly-once marker table {self.name!r} could not be created: "
            f"create it once with '{self.ddl('postgresql')}'"
            "\nHINT: or pass marker_table=None for at-least-once writes (then upsert with "
            "conflict=[...] so a retried batch is not duplicated)"
        )


class _Probed(Exception):
    """Internal: roll the outcome check back."""


@dataclass
class _Attempt:
    commit_sent: bool = False  # from here on, an error leaves the outcome unknown
    done: bool = False  # the batch is in (committed now, or found committed before)


def _created_concurrently(exc: BaseException) -> bool:
    """True when CREATE TABLE IF NOT EXISTS lost a race with another session creating the same
    table (PostgreSQL raises a unique violation on its catalog, or duplicate_table)."""
    for candidate in (exc, getattr(exc, "orig", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code in ("23505", "42P07"):
            return True
    return False


def _markers(marker_table: str | None, marker_retention_s: float) -> _Markers | None:
    retention = check_seconds("marker_retention_s", marker_retention_s)
    if marker_table is None:
        return None
    return _Markers(_ident(marker_table, "marker_table"), marker_table, retention)


def _swallow_after_commit(what: str, exc: BaseException) -> None:
    logger.warning(
        "slipstream: %s failed after the batch was committed (ignored, the rows are in): %s: %s",
        what,
        type(exc).__name__,
        exc,
    )


def asyncpg_flush(
    pool: Any,
    table: str,
    columns: Sequence[str],
    *,
    conflict: Sequence[str] | None = None,
    update: Sequence[str] | None = None,
    copy: bool | None = None,
    marker_table: str | None = DEFAULT_MARKER_TABLE,
    marker_retention_s: float = _RETENTION_S,
) -> BatchFlush:
    """A flush function writing rows (mappings or sequences) with an asyncpg pool or connection,
    each batch exactly once (see the module doc): ``await flush(rows, batch_id=None)``.

    Args:
        pool: an ``asyncpg.Pool`` (a connection is acquired per flush) or a ``Connection`` (a
            dead one cannot be replaced: prefer a pool).
        table: the table (``schema.table`` allowed).
        columns: the columns written, in order.
        conflict: the unique columns of an upsert (``ON CONFLICT (...) DO UPDATE``).
        update: the columns an upsert updates (default: all but ``conflict``; none: DO NOTHING).
        copy: plain inserts use ``COPY`` (``copy_records_to_table``, the fastest path); default
            on when there is no ``conflict``.
        marker_table: the table of batch markers (``schema.table`` allowed), created if missing;
            None: no markers, at-least-once.
        marker_retention_s: markers older than this are deleted when the flush first writes.
    """
    markers = _markers(marker_table, marker_retention_s)
    if not (hasattr(pool, "acquire") or hasattr(pool, "copy_records_to_table")):
        raise TypeError(f"'pool' must be an asyncpg Pool or Connection, got {type(pool).__name__}")
    columns = _names(columns, "columns") or []
    if not columns:
        raise ValueError("'columns' must name at least one column")
    conflict = _names(conflict, "conflict", allow_none=True)
    update = _names(update, "update", allow_none=True)
    if copy is not None:
        check_instance("copy", copy, bool, "a bool or None")
    use_copy = conflict is None if copy is None else copy
    if use_copy and conflict is not None:
        raise ValueError("COPY cannot upsert; pass copy=False with 'conflict'")
    sql = _insert_sql(table, columns, conflict, update, lambda i: f"${i + 1}")
    schema, _, name = table.rpartition(".")
    check_sql = ""
    if markers is not None:
        check_sql = (
            "WITH cfg AS (SELECT set_config('lock_timeout', $2, true)) "
            f"INSERT INTO {markers.table} (batch_id) SELECT $1 FROM cfg ON CONFLICT DO NOTHING"
        )

    def begin_sql(bid: str, stale: list[str]) -> str:
        """BEGIN and the marker in one round trip (a simple query: the ids are checked to be
        plain characters, so they are inlined as literals)."""
        assert markers is not None
        mark = f"INSERT INTO {markers.table} (batch_id) VALUES ('{bid}') ON CONFLICT DO NOTHING"
        if stale:
            gone = ", ".join(f"'{b}'" for b in stale)
            mark = f"WITH gone AS (DELETE FROM {markers.table} WHERE batch_id IN ({gone})) " + mark
        return "BEGIN; " + mark

    pooled = hasattr(pool, "acquire")

    async def acquire() -> Any:
        return await pool.acquire() if pooled else pool

    async def release(conn: Any, state: _Attempt | None = None) -> None:
        """Back to the pool. An error here (the reset of a connection that died) changes
        nothing on the server: the pool has terminated the connection. Never raised."""
        if not pooled:
            return
        try:
            await pool.release(conn)
        except Exception as exc:
            if state is not None and state.done:
                _swallow_after_commit("releasing the connection to the pool", exc)
            else:
                logger.debug("slipstream: releasing a connection failed: %r", exc)

    async def prepare() -> None:
        assert markers is not None
        conn = await acquire()
        try:
            exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", markers.table)
            if not exists:
                try:
                    await conn.execute(markers.ddl("postgresql"))
                except Exception as exc:
                    if not _created_concurrently(exc):
                        markers.setup_failed(exc)
                        raise
            await conn.execute(
                f"DELETE FROM {markers.table} "
                "WHERE committed_at < now() - make_interval(secs => $1)",
                markers.retention_s,
            )
        finally:
            await release(conn)
        markers.ready = True

    async def write(conn: Any, records: list[tuple[Any, ...]]) -> None:
        if use_copy:
            await conn.copy_records_to_table(
                name, records=records, columns=list(columns), schema_name=schema or None
            )
        else:
            await conn.executemany(sql, records)

    async def attempt(conn: Any, records: list[tuple[Any, ...]], bid: str, state: _Attempt) -> None:
        if markers is None:
            async with conn.transaction():
                await write(conn, records)
                state.commit_sent = True  # leaving the block sends COMMIT
            state.done = True
            return
        stale = list(markers.acked) if len(markers.acked) >= _ACKED_KEPT else []
        try:
            status = await conn.execute(begin_sql(bid, stale))
            if status.endswith(" 0"):  # an earlier attempt committed this batch
                await conn.execute("ROLLBACK")
                logger.info("slipstream: batch %s was already committed; not written again", bid)
                state.done = True
                return
            await write(conn, records)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            raise
        state.commit_sent = True
        status = await conn.execute("COMMIT")
        if status != "COMMIT":  # the server rolled the transaction back: nothing is in
            state.commit_sent = False
            raise RuntimeError(f"batch {bid}: COMMIT answered {status!r}; nothing was written")
        state.done = True
        markers.acked.difference_update(stale)

    async def committed(bid: str) -> bool:
        """After a lost COMMIT reply: True when the batch's marker is in (on a new connection)."""
        problem: BaseException | None = None
        for _ in range(_CHECK_ATTEMPTS):
            try:
                conn = await acquire()
            except Exception as exc:
                problem = exc
                continue
            try:
                try:
                    async with conn.transaction():  # rolled back: the probe leaves no marker
                        status = await conn.execute(check_sql, bid, _CHECK_LOCK_TIMEOUT)
                        raise _Probed
                except _Probed:
                    pass
                return bool(status.endswith(" 0"))
            except Exception as exc:
                problem = exc
            finally:
                await release(conn)
        raise CommitOutcomeUnknown(bid, f"the check failed: {type(problem).__name__}: {problem}")

    async def flush(rows: list[Any], batch_id: str | None = None) -> None:
        bid = _batch_id(batch_id)
        records = [_record(r, columns) for r in rows]
        if not records:
            return
        if markers is not None and not markers.ready:
            await prepare()
        state = _Attempt()
        conn = await acquire()
        try:
            try:
                await attempt(conn, records, bid, state)
            finally:
                await release(conn, state)
        except Exception as exc:
            if not state.commit_sent:
                raise  # nothing was committed: a retry is safe, bisecting too
            if markers is None:
                raise  # at-least-once, as documented
            try:
                done = await committed(bid)
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

    return flush


def sqlalchemy_flush(
    sessionmaker: Any,
    table: Any,
    *,
    conflict: Sequence[str] | None = None,
    update: Sequence[str] | None = None,
    marker_table: str | None = DEFAULT_MARKER_TABLE,
    marker_retention_s: float = _RETENTION_S,
) -> Callable[..., Any]:
    """A flush function writing mapping rows through SQLAlchemy 2, sync or async, each batch
    exactly once on PostgreSQL and SQLite (see the module doc): ``flush(rows, batch_id=None)``.

    Args:
        sessionmaker: a ``sessionmaker`` (sync flush) or ``async_sessionmaker`` (async flush).
        table: a ``Table`` or a mapped class.
        conflict: the unique columns of an upsert (PostgreSQL and SQLite ``ON CONFLICT``).
        update: the columns an upsert updates (default: all others; none: DO NOTHING).
        marker_table: the table of batch markers, created if missing; None: no markers,
            at-least-once (needed on databases other than PostgreSQL and SQLite).
        marker_retention_s: markers older than this are deleted when the flush first writes.
    """
    import sqlalchemy as sa

    if not callable(sessionmaker):
        raise TypeError(
            f"'sessionmaker' must be a sessionmaker or async_sessionmaker, got "
            f"{type(sessionmaker).__name__}"
        )
    table = getattr(table, "__table__", table)
    if not isinstance(table, sa.Table):
        raise TypeError(f"'table' must be a Table or a mapped class, got {type(table).__name__}")
    conflict = _names(conflict, "conflict", allow_none=True)
    update = _names(update, "update", allow_none=True)
    markers = _markers(marker_table, marker_retention_s)
    bind = getattr(sessionmaker, "kw", {}).get("bind")
    known = getattr(getattr(bind, "dialect", None), "name", None)
    if markers is not None and known is not None and known not in ("postgresql", "sqlite"):
        raise TypeError(
            f"exactly-once markers are supported on PostgreSQL and SQLite, not {known!r}"
            "\nHINT: pass marker_table=None (at-least-once; upsert so retries are harmless)"
        )

    def statement(dialect: str) -> Any:
        if conflict is None:
            return sa.insert(table)
        if dialect not in ("postgresql", "sqlite"):
            raise TypeError(f"upserts are supported on PostgreSQL and SQLite, not {dialect!r}")
        module = importlib.import_module(f"sqlalchemy.dialects.{dialect}")
        stmt = module.insert(table)
        names = [c.name for c in table.columns if c.name not in conflict]
        updated = names if update is None else list(update)
        if not updated:
            return stmt.on_conflict_do_nothing(index_elements=list(conflict))
        return stmt.on_conflict_do_update(
            index_elements=list(conflict), set_={c: stmt.excluded[c] for c in updated}
        )

    mark = delete_acked = None
    if markers is not None:
        mark = sa.text(
            f"INSERT INTO {markers.table} (batch_id) VALUES (:batch_id) ON CONFLICT DO NOTHING"
        )
        delete_acked = sa.text(f"DELETE FROM {markers.table} WHERE batch_id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)
        )

    def setup_statements(dialect: str) -> tuple[Any, Any, Any, dict[str, Any]]:
        """(exists, create, sweep, sweep parameters) for the marker table on ``dialect``."""
        assert markers is not None
        if dialect not in ("postgresql", "sqlite"):
            raise TypeError(
                f"exactly-once markers are supported on PostgreSQL and SQLite, not {dialect!r}"
                "\nHINT: pass marker_table=None (at-least-once; upsert so retries are harmless)"
            )
        if dialect == "postgresql":
            exists = sa.text("SELECT to_regclass(:name) IS NOT NULL").bindparams(name=markers.table)
            sweep = sa.text(
                f"DELETE FROM {markers.table} WHERE committed_at < now() - "
                "make_interval(secs => :s)"
            )
            return exists, sa.text(markers.ddl(dialect)), sweep, {"s": markers.retention_s}
        bare = markers.name.rpartition(".")[2]
        exists = sa.text(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = :name"
        ).bindparams(name=bare)
        sweep = sa.text(f"DELETE FROM {markers.table} WHERE committed_at < datetime('now', :m)")
        return (
            exists,
            sa.text(markers.ddl(dialect)),
            sweep,
            {"m": f"-{markers.retention_s} seconds"},
        )

    def dialect_of(session: Any) -> str:
        return str(session.get_bind().dialect.name)

    is_async = type(sessionmaker).__name__ == "async_sessionmaker"
    if is_async:

        async def prepare_async() -> None:
            assert markers is not None
            async with sessionmaker() as session:
                exists, create, sweep, params = setup_statements(dialect_of(session))
                try:
                    if not (await session.execute(exists)).scalar():
                        await session.execute(create)
                        await session.commit()
                except Exception as exc:
                    await session.rollback()
                    if not _created_concurrently(exc):
                        markers.setup_failed(exc)
                        raise
                await session.execute(sweep, params)
                await session.commit()
            markers.ready = True

        async def attempt_async(
            session: Any, params: list[dict[str, Any]], bid: str, state: _Attempt
        ) -> None:
            stale: list[str] = []
            try:
                if markers is not None:
                    stale = list(markers.acked) if len(markers.acked) >= _ACKED_KEPT else []
                    if stale:
                        await session.execute(delete_acked, {"ids": stale})
                    if (await session.execute(mark, {"batch_id": bid})).rowcount == 0:
                        logger.info("slipstream: batch %s was already committed", bid)
                        await session.rollback()
                        state.done = True
                        return
                await session.execute(statement(dialect_of(session)), params)
            except BaseException:
                with contextlib.suppress(Exception):
                    await session.rollback()
                raise
            state.commit_sent = True
            await session.commit()
            state.done = True
            if markers is not None:
                markers.acked.difference_update(stale)

        async def committed_async(bid: str) -> bool:
            problem: BaseException | None = None
            for _ in range(_CHECK_ATTEMPTS):
                try:
                    async with sessionmaker() as session:
                        try:
                            if dialect_of(session) == "postgresql":
                                await session.execute(
                                    sa.text(f"SET LOCAL lock_timeout = '{_CHECK_LOCK_TIMEOUT}'")
                                )
                            result = await session.execute(mark, {"batch_id": bid})
                        finally:
                            await session.rollback()
                    return bool(result.rowcount == 0)
                except Exception as exc:
                    problem = exc
            raise CommitOutcomeUnknown(
                bid, f"the check failed: {type(problem).__name__}: {problem}"
            )

        async def flush_async(rows: list[Mapping[str, Any]], batch_id: str | None = None) -> None:
            bid = _batch_id(batch_id)
            params = [dict(r) for r in rows]
            if not params:
                return
            if markers is not None and not markers.ready:
                await prepare_async()
            state = _Attempt()
            try:
                session = sessionmaker()
                try:
                    await attempt_async(session, params, bid, state)
                finally:
                    try:
                        await session.close()
                    except Exception as exc:  # returning the connection: the outcome is known
                        if state.done:
                            _swallow_after_commit("closing the session", exc)
            except Exception as exc:
                if not state.commit_sent or markers is None:
                    raise
                try:
                    done = await committed_async(bid)
                except CommitOutcomeUnknown as unknown:
                    raise unknown from exc
                if not done:
                    raise
                logger.info(
                    "slipstream: the COMMIT of batch %s lost its reply but took effect", bid
                )
            if markers is not None:
                markers.acked.add(bid)

        return flush_async

    def prepare_sync() -> None:
        assert markers is not None
        with sessionmaker() as session:
            exists, create, sweep, params = setup_statements(dialect_of(session))
            try:
                if not session.execute(exists).scalar():
                    session.execute(create)
                    session.commit()
            except Exception as exc:
                session.rollback()
                if not _created_concurrently(exc):
                    markers.setup_failed(exc)
                    raise
            session.execute(sweep, params)
            session.commit()
        markers.ready = True

    def attempt_sync(session: Any, params: list[dict[str, Any]], bid: str, state: _Attempt) -> None:
        stale: list[str] = []
        try:
            if markers is not None:
                stale = list(markers.acked) if len(markers.acked) >= _ACKED_KEPT else []
                if stale:
                    session.execute(delete_acked, {"ids": stale})
                if session.execute(mark, {"batch_id": bid}).rowcount == 0:
                    logger.info("slipstream: batch %s was already committed", bid)
                    session.rollback()
                    state.done = True
                    return
            session.execute(statement(dialect_of(session)), params)
        except BaseException:
            with contextlib.suppress(Exception):
                session.rollback()
            raise
        state.commit_sent = True
        session.commit()
        state.done = True
        if markers is not None:
            markers.acked.difference_update(stale)

    def committed_sync(bid: str) -> bool:
        problem: BaseException | None = None
        for _ in range(_CHECK_ATTEMPTS):
            try:
                with sessionmaker() as session:
                    try:
                        if dialect_of(session) == "postgresql":
                            session.execute(
                                sa.text(f"SET LOCAL lock_timeout = '{_CHECK_LOCK_TIMEOUT}'")
                            )
                        result = session.execute(mark, {"batch_id": bid})
                    finally:
                        session.rollback()
                return bool(result.rowcount == 0)
            except Exception as exc:
                problem = exc
        raise CommitOutcomeUnknown(bid, f"the check failed: {type(problem).__name__}: {problem}")

    def flush_sync(rows: list[Mapping[str, Any]], batch_id: str | None = None) -> None:
        bid = _batch_id(batch_id)
        params = [dict(r) for r in rows]
        if not params:
            return
        if markers is not None and not markers.ready:
            prepare_sync()
        state = _Attempt()
        try:
            session = sessionmaker()
            try:
                attempt_sync(session, params, bid, state)
            finally:
                try:
                    session.close()
                except Exception as exc:  # returning the connection: the outcome is known
                    if state.done:
                        _swallow_after_commit("closing the session", exc)
        except Exception as exc:
            if not state.commit_sent or markers is None:
                raise
            try:
                done = committed_sync(bid)
            except CommitOutcomeUnknown as unknown:
                raise unknown from exc
            if not done:
                raise
            logger.info("slipstream: the COMMIT of batch %s lost its reply but took effect", bid)
        if markers is not None:
            markers.acked.add(bid)

    return flush_sync


def sqlite_flush(
    path: str | os.PathLike[str],
    table: str,
    columns: Sequence[str],
    *,
    conflict: Sequence[str] | None = None,
    update: Sequence[str] | None = None,
) -> Callable[[list[Any]], None]:
    """A sync flush function writing rows (mappings or sequences) to a SQLite file, one
    transaction per call (a pipeline or ``BatchWriter`` runs it in a worker thread).

    Exactly once without a marker: a local COMMIT either returns or is rolled back (a "database
    is locked" error leaves nothing behind, so the retry writes the batch once).

    Each call opens its own connection (WAL, 30 s busy timeout): SQLite connections belong to
    one thread, and opening a file costs about 50 us, nothing against a batch's commit.

    Args:
        path: the database file.
        table, columns: where the rows go.
        conflict: the unique columns of an upsert (``ON CONFLICT (...) DO UPDATE``).
        update: the columns an upsert updates (default: all others; none: DO NOTHING).
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"'path' must be a file path, got {type(path).__name__}")
    columns = _names(columns, "columns") or []
    if not columns:
        raise ValueError("'columns' must name at least one column")
    conflict = _names(conflict, "conflict", allow_none=True)
    update = _names(update, "update", allow_none=True)
    sql = _insert_sql(table, columns, conflict, update, lambda i: "?")
    target = os.fspath(path)

    def flush(rows: list[Any]) -> None:
        records = [_record(r, columns) for r in rows]
        conn = sqlite3.connect(target, timeout=30)
        committed = False
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            with conn:  # commits, or rolls back and re-raises
                conn.executemany(sql, records)
            committed = True
        finally:
            try:
                conn.close()
            except Exception as exc:
                if not committed:
                    raise
                _swallow_after_commit("closing the SQLite connection", exc)

    return flush
