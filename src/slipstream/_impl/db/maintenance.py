"""Database maintenance that never blocks the event loop.

One big ``DELETE`` (a whole cache namespace) or a ``REFRESH MATERIALIZED VIEW`` run on the
loop freezes every request for as long as it takes (seconds); the fixes are chunks of 1,000
rows in a thread, and the long statement in a thread. These are those fixes, done once:

- ``chunked_delete``: N rows per statement, each its own transaction, a short pause between
  chunks, off the loop (an async driver, or a worker thread for sync ones);
- ``run_long_statement``: one long statement on its own connection in a worker thread, rolled
  back on error;
- ``ensure_alive``: one round trip before long work, with a clear error when the server is gone.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import sqlite3
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from ..core.checks import check_callable, check_int, check_seconds
from ..core.threads import default_executor

__all__ = ["chunked_delete", "ensure_alive", "run_long_statement"]

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
P = ParamSpec("P")
T = TypeVar("T")
_WHERE_HINT = (
    '\nHINT: name the rows to delete, e.g. where="ns = $1", params=("genes",); to delete '
    'every row on purpose, pass where="TRUE"'
)


def _kind(target: Any) -> str:
    if isinstance(target, str | os.PathLike) and not str(target).startswith("postgresql"):
        return "sqlite-path"
    if hasattr(target, "dialect") and hasattr(target, "begin"):
        return "sqlalchemy"
    if hasattr(target, "fetchval"):
        return "asyncpg"
    raise TypeError(
        "'target' must be an asyncpg pool or connection, a SQLAlchemy Engine, or a SQLite file "
        f"path, got {type(target).__name__}"
    )


async def _in_thread(fn: Callable[[], Any]) -> Any:
    return await asyncio.get_running_loop().run_in_executor(default_executor(), fn)


def _where_by_keyword(
    fn: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Refuse a ``chunked_delete`` call without ``where=`` (or with it in a positional slot)
    with a message that says how to delete everything on purpose."""

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        if len(args) > 2:
            raise TypeError(
                "chunked_delete takes 'where' and 'params' by keyword only, got "
                f"{len(args)} positional arguments" + _WHERE_HINT
            )
        if "where" not in kwargs:
            raise TypeError("chunked_delete needs 'where': the rows to delete" + _WHERE_HINT)
        return await fn(*args, **kwargs)

    return call


@_where_by_keyword
async def chunked_delete(
    target: Any,
    table: str,
    *,
    where: str,
    params: Sequence[Any] | dict[str, Any] = (),
    batch_size: int = 1000,
    pause_s: float = 0.01,
    on_progress: Callable[[int], Any] | None = None,
) -> int:
    """Delete the rows of ``table`` matching ``where``, ``batch_size`` rows per statement.

    Each chunk is its own transaction: an error midway leaves the chunks already deleted
    deleted (run it again to finish; the condition still holds for the rest).

    Args:
        target: an asyncpg pool or connection (run on the loop, it awaits the server), a
            SQLAlchemy ``Engine`` or a SQLite file path (run in a worker thread).
        table: the table name (``schema.table`` allowed).
        where: the condition, required (``where="TRUE"`` deletes every row), in the driver's
            parameter style (``$1`` for asyncpg, ``:name`` for SQLAlchemy, ``?`` for SQLite).
        params: its parameters.
        batch_size: rows per statement (and per transaction).
        pause_s: the pause between chunks, so other work gets the database and the loop.
        on_progress: ``callback(rows_deleted_so_far)`` after each chunk.

    Returns:
        the number of rows deleted.
    """
    if not isinstance(table, str) or not _TABLE.match(table):
        raise ValueError(f"'table' must be a plain SQL identifier, got {table!r}")
    if not isinstance(where, str):
        raise TypeError(f"'where' must be a SQL condition (str), got {type(where).__name__}")
    if not where.strip():
        raise ValueError("'where' must be a SQL condition, got an empty string" + _WHERE_HINT)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    pause_s = check_seconds("pause_s", pause_s, allow_zero=True)
    check_callable("on_progress", on_progress, allow_none=True)
    kind = _kind(target)
    if kind == "asyncpg" and isinstance(params, dict):
        raise TypeError("'params' must be a sequence for asyncpg ($1, $2, ...), got a dict")
    total = 0
    while True:
        if kind == "asyncpg":
            sql = (
                f"DELETE FROM {table} WHERE ctid IN "
                f"(SELECT ctid FROM {table} WHERE {where} LIMIT {batch_size})"
            )
            status = await target.execute(sql, *params)
            deleted = int(status.split()[-1])
        else:
            deleted = await _in_thread(
                lambda: _delete_chunk(target, kind, table, where, params, batch_size)
            )
        total += deleted
        if on_progress is not None:
            on_progress(total)
        if deleted < batch_size:
            return total
        await asyncio.sleep(pause_s)


def _delete_chunk(
    target: Any, kind: str, table: str, where: str, params: Any, batch_size: int
) -> int:
    if kind == "sqlite-path":
        conn = sqlite3.connect(target, timeout=30)
        try:
            with conn:
                cur = conn.execute(
                    f"DELETE FROM {table} WHERE rowid IN "
                    f"(SELECT rowid FROM {table} WHERE {where} LIMIT {batch_size})",
                    params,
                )
                return int(cur.rowcount)
        finally:
            conn.close()
    from sqlalchemy import text

    row = "ctid" if target.dialect.name == "postgresql" else "rowid"
    sql = text(
        f"DELETE FROM {table} WHERE {row} IN "
        f"(SELECT {row} FROM {table} WHERE {where} LIMIT {batch_size})"
    )
    with target.begin() as conn:
        return int(conn.execute(sql, dict(params) if params else {}).rowcount)


async def run_long_statement(
    target: Any, sql: str, params: Sequence[Any] | dict[str, Any] = ()
) -> float:
    """Run one long statement (``REFRESH MATERIALIZED VIEW``, ``VACUUM``, a big ``UPDATE``) in a
    worker thread on its own connection: committed on success, rolled back on error (which is
    raised). Returns the seconds it took.

    Args:
        target: a SQLAlchemy ``Engine`` or a SQLite file path.
    """
    kind = _kind(target)
    if kind == "asyncpg":
        raise TypeError(
            "run_long_statement needs a sync target (a SQLAlchemy Engine or a SQLite path); with "
            "asyncpg, 'await conn.execute(sql)' already leaves the loop free"
        )

    def run() -> float:
        start = time.perf_counter()
        if kind == "sqlite-path":
            conn = sqlite3.connect(Path(target), timeout=30)
            try:
                with conn:  # commits, or rolls back and re-raises
                    conn.execute(sql, params)
            finally:
                conn.close()
            return time.perf_counter() - start
        from sqlalchemy import text

        with target.connect() as conn:
            try:
                conn.execute(text(sql), dict(params) if params else {})
                conn.commit()
            except BaseException as exc:
                try:
                    conn.rollback()
                except Exception as rollback_error:  # a dead connection: keep the real error
                    exc.add_note(f"slipstream: the rollback failed too: {rollback_error!r}")
                raise
        return time.perf_counter() - start

    return float(await _in_thread(run))


async def ensure_alive(target: Any) -> float:
    """One ``SELECT 1`` round trip before long work (a connection lost mid-run fails late).

    Returns the round trip in seconds. Raises ``ConnectionError`` naming the target when the
    server cannot answer (the original error is ``__cause__``). A SQLAlchemy engine with
    ``pool_pre_ping`` replaces a dead pooled connection on the way.
    """
    kind = _kind(target)
    start = time.perf_counter()
    try:
        if kind == "asyncpg":
            await target.fetchval("SELECT 1")
        else:

            def ping() -> None:
                if kind == "sqlite-path":
                    conn = sqlite3.connect(target, timeout=5)
                    try:
                        conn.execute("SELECT 1")
                    finally:
                        conn.close()
                    return
                from sqlalchemy import text

                with target.connect() as conn:
                    conn.execute(text("SELECT 1"))

            await _in_thread(ping)
    except Exception as exc:
        raise ConnectionError(
            f"the database behind {type(target).__name__} did not answer: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return time.perf_counter() - start
