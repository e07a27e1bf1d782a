"""``ss.sqlite_flush``: inserts or upserts into a SQLite file, one transaction per call."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ...core.callables import kind_of
from ...core.checks import check_callable
from .lifecycle import PlainSyncFlush, SyncManagedFlush
from .sql import columns_of, insert_sql, record, swallow_after_commit

__all__ = ["sqlite_flush"]


def sqlite_flush(
    path: str | os.PathLike[str],
    table: str,
    columns: Sequence[str],
    *,
    conflict: Sequence[str] | None = None,
    update: Sequence[str] | None = None,
    setup: Callable[[sqlite3.Connection], Any] | None = None,
) -> SyncManagedFlush:
    """A sync flush function writing rows (mappings or sequences) to a SQLite file, one
    transaction per call (a pipeline or ``BatchWriter`` runs it in a worker thread).

    Exactly once without a marker: a local COMMIT either returns or is rolled back (a "database
    is locked" error leaves nothing behind, so the retry writes the batch once).

    Each worker thread keeps its own connection (WAL, 30 s busy timeout) until
    ``flush.close()``: SQLite connections belong to one thread, and a kept one keeps its page
    cache (a 100-row upsert: 0.4 ms, against 1.4 ms on a connection opened per call).

    It has a lifecycle, which a pipeline and the batch writers run: ``flush.setup()`` (sync)
    once before the first write runs ``setup``; ``flush.close()`` / ``await flush.aclose()``
    at the end forgets it. A flush called before ``setup()`` runs it first, once.

    Args:
        path: the database file.
        table, columns: where the rows go.
        conflict: the unique columns of an upsert (``ON CONFLICT (...) DO UPDATE``).
        update: the columns an upsert updates (default: all others; none: DO NOTHING).
        setup: ``setup(connection)`` (sync, a ``sqlite3.Connection``) run once by
            ``flush.setup()`` and committed after it: e.g. the DDL,
            ``setup=lambda conn: conn.execute("CREATE TABLE IF NOT EXISTS ...")``.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"'path' must be a file path, got {type(path).__name__}")
    columns, conflict, update = columns_of(columns, conflict, update)
    check_callable("setup", setup, allow_none=True)
    if setup is not None and kind_of(setup) != "sync":
        raise TypeError(f"'setup' must be a sync function (sqlite3 is sync), got {setup!r}")
    sql = insert_sql(table, columns, conflict, update, lambda i: "?")
    target = os.fspath(path)

    def open_() -> None:
        if setup is None:
            return
        conn = sqlite3.connect(target, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            with conn:  # commits, or rolls back and re-raises
                setup(conn)
        finally:
            conn.close()

    # One connection per worker thread, kept until close(): a connection opened per call starts
    # with a cold page cache and reads the table's pages again (1.4 ms a 100-row upsert
    # against 0.4 ms on a kept one, measured). Each is used by its own thread only; opened
    # with check_same_thread=False so that close() may close the idle ones from another
    # thread. One in use when close() runs (a cancelled run whose last flush goes on in its
    # thread) is closed by that flush when it ends: closing a sqlite3 connection under a
    # running statement crashes the process. A call that fails closes its connection.
    conns: dict[int, sqlite3.Connection] = {}
    busy: set[int] = set()
    conns_lock = threading.Lock()

    def connection(ident: int) -> sqlite3.Connection:
        with conns_lock:
            conn = conns.get(ident)
            busy.add(ident)
        if conn is None:
            try:
                conn = sqlite3.connect(target, timeout=30, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
            except BaseException:
                with conns_lock:
                    busy.discard(ident)
                raise
            with conns_lock:
                conns[ident] = conn
        return conn

    def flush(rows: list[Any], batch_id: str | None = None) -> None:
        records = [record(r, columns) for r in rows]
        ident = threading.get_ident()
        conn = connection(ident)
        keep = False
        try:
            with conn:  # commits, or rolls back and re-raises
                conn.executemany(sql, records)
            keep = True
        finally:
            with conns_lock:
                busy.discard(ident)
                keep = keep and conns.get(ident) is conn  # close() ran meanwhile: not kept
                if not keep and conns.get(ident) is conn:
                    del conns[ident]
            if not keep:
                with contextlib.suppress(Exception):  # committed or rolled back already
                    conn.close()

    def close_() -> None:
        with conns_lock:
            idle = [c for i, c in conns.items() if i not in busy]
            conns.clear()  # a busy one is closed by its flush, which finds it gone
        for conn in idle:
            try:
                conn.close()
            except Exception as exc:  # every batch was committed before
                swallow_after_commit("closing the SQLite connection", exc)

    return PlainSyncFlush(f"sqlite_flush({table!r})", flush, open_, close_)
