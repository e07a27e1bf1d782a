"""``ss.asyncpg_flush``: COPY, inserts or upserts through an asyncpg pool, exactly once."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from ...core.checks import check_callable, check_instance
from .lifecycle import AsyncFlush, ManagedFlush, run_user_setup
from .markers import (
    CHECK_LOCK_TIMEOUT,
    DEFAULT_MARKER_TABLE,
    RETENTION_S,
    Attempt,
    exactly_once,
    markers_of,
)
from .sql import columns_of, insert_sql, logger, record, swallow_after_commit
from .steps import Steps, run_async

__all__ = ["asyncpg_flush"]


def asyncpg_flush(
    pool: Any,
    table: str,
    columns: Sequence[str],
    *,
    conflict: Sequence[str] | None = None,
    update: Sequence[str] | None = None,
    copy: bool | None = None,
    marker_table: str | None = DEFAULT_MARKER_TABLE,
    marker_retention_s: float = RETENTION_S,
    setup: Callable[[Any], Any] | None = None,
    close_pool: bool | None = None,
) -> ManagedFlush:
    """A flush function writing rows (mappings or sequences) with an asyncpg pool or connection,
    each batch exactly once (see the module doc): ``await flush(rows, batch_id=None)``.

    It has a lifecycle (``ss.typing.ManagedFlush``), which a pipeline and ``BatchWriter`` run:
    ``await flush.setup()`` once before the first write (makes the pool if ``pool`` is a
    factory, runs ``setup``, creates the marker table), ``await flush.aclose()`` at the end
    (closes the pool it made). A flush called before ``setup()`` runs it first, once however
    many calls start together.

    Args:
        pool: an ``asyncpg.Pool`` (a connection is acquired per flush) or a ``Connection`` (a
            dead one cannot be replaced: prefer a pool); or a zero-argument callable returning
            one (or an awaitable of one), called by ``setup()``: e.g.
            ``lambda: asyncpg.create_pool(url)``.
        table: the table (``schema.table`` allowed).
        columns: the columns written, in order.
        conflict: the unique columns of an upsert (``ON CONFLICT (...) DO UPDATE``).
        update: the columns an upsert updates (default: all but ``conflict``; none: DO NOTHING).
        copy: plain inserts use ``COPY`` (``copy_records_to_table``, the fastest path); default
            on when there is no ``conflict``.
        marker_table: the table of batch markers (``schema.table`` allowed), created if missing;
            None: no markers, at-least-once.
        marker_retention_s: markers older than this are deleted when the flush first writes.
        setup: ``setup(connection)``, sync or async, run once by ``flush.setup()`` with a
            connection of the pool, e.g. the DDL:
            ``setup=lambda conn: conn.execute("CREATE TABLE IF NOT EXISTS ...")``.
        close_pool: whether ``aclose()`` closes the pool (default: only a pool the flush made
            from a factory; pass False when a registry owns it).

    Example::

        flush = ss.asyncpg_flush(
            lambda: asyncpg.create_pool(url), "labels", ["key", "label"], conflict=["key"],
            setup=lambda conn: conn.execute(DDL),
        )
        pipeline = ss.Pipeline(source, stages, flush)  # the run sets it up and closes it
    """
    markers = markers_of(marker_table, marker_retention_s)
    factory: Callable[[], Any] | None = None
    if not _is_connection(pool):
        if not callable(pool):
            raise TypeError(
                f"'pool' must be an asyncpg Pool or Connection, or a callable making one, got "
                f"{type(pool).__name__}"
            )
        factory, pool = pool, None
    check_callable("setup", setup, allow_none=True)
    if close_pool is not None:
        check_instance("close_pool", close_pool, bool, "a bool or None")
    closes = factory is not None if close_pool is None else close_pool
    columns, conflict, update = columns_of(columns, conflict, update)
    if copy is not None:
        check_instance("copy", copy, bool, "a bool or None")
    use_copy = conflict is None if copy is None else copy
    if use_copy and conflict is not None:
        raise ValueError("COPY cannot upsert; pass copy=False with 'conflict'")
    sql = insert_sql(table, columns, conflict, update, lambda i: f"${i + 1}")
    schema, _, name = table.rpartition(".")
    pooled = hasattr(pool, "acquire")

    async def open_() -> None:
        nonlocal pool, pooled
        if pool is None:
            assert factory is not None
            made = await _maybe_await(factory())
            if not _is_connection(made):
                raise TypeError(
                    f"the 'pool' factory must return an asyncpg Pool or Connection, got "
                    f"{type(made).__name__}"
                )
            pool, pooled = made, hasattr(made, "acquire")
        if setup is not None:
            await run_async(user_setup())
        if markers is not None and not markers.ready:
            await run_async(prepare())
            markers.ready = True

    def user_setup() -> Steps[None]:
        assert setup is not None
        conn = yield from acquire()
        try:
            yield run_user_setup(setup, conn)
        finally:
            yield from release(conn)

    async def close() -> None:
        nonlocal pool
        made, pool = pool, (None if factory is not None else pool)
        if closes and made is not None:
            await made.close()

    def begin_sql(bid: str, stale: list[str]) -> str:
        """BEGIN and the marker in one round trip (a simple query: the ids are checked to be
        plain characters, so they are inlined as literals)."""
        assert markers is not None
        mark = markers.mark_sql(f"'{bid}'")
        if stale:
            gone = markers.delete_sql("(" + ", ".join(f"'{b}'" for b in stale) + ")")
            mark = f"WITH gone AS ({gone}) " + mark
        return "BEGIN; " + mark

    def acquire() -> Steps[Any]:
        if pooled:
            return (yield pool.acquire())
        return pool

    def release(conn: Any, state: Attempt | None = None) -> Steps[None]:
        """Back to the pool. An error here (the reset of a connection that died) changes
        nothing on the server: the pool has terminated the connection. Never raised."""
        if not pooled:
            return
        try:
            yield pool.release(conn)
        except Exception as exc:
            if state is not None and state.done:
                swallow_after_commit("releasing the connection to the pool", exc)
            else:
                logger.debug("slipstream: releasing a connection failed: %r", exc)

    def prepare() -> Steps[None]:
        assert markers is not None
        conn = yield from acquire()
        try:
            exists = yield conn.fetchval("SELECT to_regclass($1) IS NOT NULL", markers.table)
            if not exists:
                try:
                    yield conn.execute(markers.ddl("postgresql"))
                except Exception as exc:
                    markers.create_failed(exc)
            yield conn.execute(markers.sweep_sql("postgresql", "$1"), markers.retention_s)
        finally:
            yield from release(conn)

    def write(conn: Any, records: list[tuple[Any, ...]]) -> Any:
        if use_copy:
            return conn.copy_records_to_table(
                name, records=records, columns=list(columns), schema_name=schema or None
            )
        return conn.executemany(sql, records)

    def transaction(conn: Any, records: list[tuple[Any, ...]], state: Attempt) -> Steps[None]:
        """Without markers: the rows in a plain transaction (at-least-once)."""
        xact = conn.transaction()
        yield xact.start()
        try:
            yield write(conn, records)
        except BaseException:
            yield xact.rollback()
            raise
        state.commit_sent = True
        yield xact.commit()
        state.done = True

    def marked(conn: Any, records: list[tuple[Any, ...]], bid: str, state: Attempt) -> Steps[None]:
        """With markers: BEGIN and the marker, the rows, COMMIT."""
        assert markers is not None
        stale = markers.stale()
        try:
            status = yield conn.execute(begin_sql(bid, stale))
            if status.endswith(" 0"):  # an earlier attempt committed this batch
                yield conn.execute("ROLLBACK")
                state.already_committed(bid)
                return
            yield write(conn, records)
        except BaseException:
            with contextlib.suppress(Exception):
                yield conn.execute("ROLLBACK")
            raise
        state.commit_sent = True
        status = yield conn.execute("COMMIT")
        if status != "COMMIT":  # the server rolled the transaction back: nothing is in
            state.commit_sent = False
            raise RuntimeError(f"batch {bid}: COMMIT answered {status!r}; nothing was written")
        state.done = True
        markers.forget(stale)

    def attempt(records: list[tuple[Any, ...]], bid: str, state: Attempt) -> Steps[None]:
        conn = yield from acquire()
        try:
            if markers is None:
                yield from transaction(conn, records, state)
            else:
                yield from marked(conn, records, bid, state)
        finally:
            yield from release(conn, state)

    def probe(bid: str) -> Steps[bool]:
        """After a lost COMMIT reply: True when the batch's marker is in (on a new connection).
        The probe inserts the marker in a transaction it rolls back, so it leaves none; a
        marker still being committed by the lost attempt is waited for (lock_timeout)."""
        assert markers is not None
        check = (
            "WITH cfg AS (SELECT set_config('lock_timeout', $2, true)) "
            f"INSERT INTO {markers.table} (batch_id) SELECT $1 FROM cfg ON CONFLICT DO NOTHING"
        )
        conn = yield from acquire()
        try:
            xact = conn.transaction()
            yield xact.start()
            try:
                status = yield conn.execute(check, bid, CHECK_LOCK_TIMEOUT)
            finally:
                yield xact.rollback()
        finally:
            yield from release(conn)
        return bool(status.endswith(" 0"))

    def records_of(rows: list[Any]) -> list[tuple[Any, ...]]:
        return [record(r, columns) for r in rows]

    async def write_batch(rows: list[Any], batch_id: str | None) -> None:
        await run_async(
            exactly_once(
                markers,
                batch_id,
                rows,
                records_of,
                prepare=prepare,
                attempt=attempt,
                probe=probe,
            )
        )

    return AsyncFlush(f"asyncpg_flush({table!r})", write_batch, open_, close)


def _is_connection(obj: Any) -> bool:
    """An asyncpg Pool (``acquire``) or Connection (``copy_records_to_table``)."""
    return hasattr(obj, "acquire") or hasattr(obj, "copy_records_to_table")


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
