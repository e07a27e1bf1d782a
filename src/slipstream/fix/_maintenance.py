"""Database maintenance that never blocks the event loop (seed 004).

Seed 004's API froze for 13-16 s while the loop deleted a cache namespace in one statement, and
again while it refreshed a materialised view; its fixes were chunks of 1,000 rows in a thread,
and the refresh in a thread. These are those fixes, done once:

- ``chunked_delete``: N rows per statement, each its own transaction, a short pause between
  chunks, off the loop (an async driver, or a worker thread for sync ones);
- ``run_long_statement``: one long statement on its own connection in a worker thread, rolled
  back on error;
- ``ensure_alive``: one round trip before long work, with a clear error when the server is gone.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._threads import default_executor

__all__ = ["chunked_delete", "ensure_alive", "run_long_statement"]

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


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


async def chunked_delete(
    target: Any,
    table: str,
    where: str = "TRUE",
    params: Sequence[Any] | dict[str, Any] = (),
    *,
    chunk_size: int = 1000,
    pause_s: float = 0.01,
    on_progress: Callable[[int], Any] | None = None,
) -> int:
    """Delete the rows of ``table`` matching ``where``, ``chunk_size`` rows per statement.

    Args:
        target: an asyncpg pool or connection (run on the loop, it awaits the server), a
            SQLAlchemy ``Engine`` or a SQLite file path (run in a worker thread).
        table: the table name (``schema.table`` allowed).
        where: the condition, in the driver's parameter style (``$1`` for asyncpg, ``:name``
            for SQLAlchemy, ``?`` for SQLite).
        params: its parameters.
        chunk_size: rows per statement (and per transaction).
        pause_s: the pause between chunks, so other work gets the database and the loop.
        on_progress: ``callback(rows_deleted_so_far)`` after each chunk.

    Returns:
        the number of rows deleted.
    """
    if not _TABLE.match(table):
        raise ValueError(f"'table' must be a plain SQL identifier, got {table!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"'chunk_size' must be an int >= 1, got {chunk_size!r}")
    if not pause_s >= 0:
        raise ValueError(f"'pause_s' must be >= 0, got {pause_s!r}")
    kind = _kind(target)
    total = 0
    while True:
        if kind == "asyncpg":
            sql = (
                f"DELETE FROM {table} WHERE ctid IN "
                f"(SELECT ctid FROM {table} WHERE {where} LIMIT {chunk_size})"
            )
            status = await target.execute(sql, *params)
            deleted = int(status.split()[-1])
        else:
            deleted = await _in_thread(
                lambda: _delete_chunk(target, kind, table, where, params, chunk_size)
            )
        total += deleted
        if on_progress is not None:
            on_progress(total)
        if deleted < chunk_size:
            return total
        await asyncio.sleep(pause_s)


def _delete_chunk(
    target: Any, kind: str, table: str, where: str, params: Any, chunk_size: int
) -> int:
    if kind == "sqlite-path":
        conn = sqlite3.connect(target, timeout=30)
        try:
            with conn:
                cur = conn.execute(
                    f"DELETE FROM {table} WHERE rowid IN "
                    f"(SELECT rowid FROM {table} WHERE {where} LIMIT {chunk_size})",
                    params,
                )
                return int(cur.rowcount)
        finally:
            conn.close()
    from sqlalchemy import text

    row = "ctid" if target.dialect.name == "postgresql" else "rowid"
    sql = text(
        f"DELETE FROM {table} WHERE {row} IN "
        f"(SELECT {row} FROM {table} WHERE {where} LIMIT {chunk_size})"
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
            except BaseException:
                conn.rollback()
                raise
        return time.perf_counter() - start

    return float(await _in_thread(run))


async def ensure_alive(target: Any) -> float:
    """One ``SELECT 1`` round trip before long work (seed 004 lost its connection mid-run).

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
