"""Ready-made flush functions for ``BatchWriter``: asyncpg and SQLAlchemy, insert or upsert.

Each call writes its rows in one transaction. Upserts (``conflict=[...]``) make a retried batch
harmless: rows already written are updated, not duplicated.
"""

from __future__ import annotations

import importlib
import os
import re
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

__all__ = ["asyncpg_flush", "sqlalchemy_flush", "sqlite_flush"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _ident(name: str, what: str) -> str:
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"'{what}' must be a plain SQL identifier, got {name!r}")
    return ".".join(f'"{part}"' for part in name.split("."))


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


def asyncpg_flush(
    pool: Any,
    table: str,
    columns: Sequence[str],
    *,
    conflict: Sequence[str] | None = None,
    update: Sequence[str] | None = None,
    copy: bool | None = None,
) -> Callable[[list[Any]], Awaitable[None]]:
    """A flush function writing rows (mappings or sequences) with an asyncpg pool or connection.

    Args:
        pool: an ``asyncpg.Pool`` (a connection is acquired per flush) or a ``Connection``.
        table: the table (``schema.table`` allowed).
        columns: the columns written, in order.
        conflict: the unique columns of an upsert (``ON CONFLICT (...) DO UPDATE``).
        update: the columns an upsert updates (default: all but ``conflict``; none: DO NOTHING).
        copy: plain inserts use ``COPY`` (``copy_records_to_table``, the fastest path); default
            on when there is no ``conflict``.
    """
    if not columns:
        raise ValueError("'columns' must name at least one column")
    use_copy = conflict is None if copy is None else copy
    if use_copy and conflict is not None:
        raise ValueError("COPY cannot upsert; pass copy=False with 'conflict'")
    sql = _insert_sql(table, columns, conflict, update, lambda i: f"${i + 1}")
    schema, _, name = table.rpartition(".")

    async def write(conn: Any, records: list[tuple[Any, ...]]) -> None:
        async with conn.transaction():
            if use_copy:
                await conn.copy_records_to_table(
                    name, records=records, columns=list(columns), schema_name=schema or None
                )
            else:
                await conn.executemany(sql, records)

    async def flush(rows: list[Any]) -> None:
        records = [_record(r, columns) for r in rows]
        if hasattr(pool, "acquire"):
            async with pool.acquire() as conn:
                await write(conn, records)
        else:
            await write(pool, records)

    return flush


def sqlalchemy_flush(
    sessionmaker: Any,
    table: Any,
    *,
    conflict: Sequence[str] | None = None,
    update: Sequence[str] | None = None,
) -> Callable[[list[Mapping[str, Any]]], Any]:
    """A flush function writing mapping rows through SQLAlchemy 2, sync or async.

    Args:
        sessionmaker: a ``sessionmaker`` (sync flush) or ``async_sessionmaker`` (async flush).
        table: a ``Table`` or a mapped class.
        conflict: the unique columns of an upsert (PostgreSQL and SQLite ``ON CONFLICT``).
        update: the columns an upsert updates (default: all others; none: DO NOTHING).
    """
    import sqlalchemy as sa

    table = getattr(table, "__table__", table)
    if not isinstance(table, sa.Table):
        raise TypeError(f"'table' must be a Table or a mapped class, got {type(table).__name__}")

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

    is_async = type(sessionmaker).__name__ == "async_sessionmaker"
    if is_async:

        async def flush_async(rows: list[Mapping[str, Any]]) -> None:
            async with sessionmaker() as session, session.begin():
                dialect = session.get_bind().dialect.name
                await session.execute(statement(dialect), [dict(r) for r in rows])

        return flush_async

    def flush_sync(rows: list[Mapping[str, Any]]) -> None:
        with sessionmaker() as session, session.begin():
            dialect = session.get_bind().dialect.name
            session.execute(statement(dialect), [dict(r) for r in rows])

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

    Each call opens its own connection (WAL, 30 s busy timeout): SQLite connections belong to
    one thread, and opening a file costs about 50 us, nothing against a batch's commit.

    Args:
        path: the database file.
        table, columns: where the rows go.
        conflict: the unique columns of an upsert (``ON CONFLICT (...) DO UPDATE``).
        update: the columns an upsert updates (default: all others; none: DO NOTHING).
    """
    if not columns:
        raise ValueError("'columns' must name at least one column")
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"'path' must be a file path, got {type(path).__name__}")
    sql = _insert_sql(table, columns, conflict, update, lambda i: "?")
    target = os.fspath(path)

    def flush(rows: list[Any]) -> None:
        records = [_record(r, columns) for r in rows]
        conn = sqlite3.connect(target, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            with conn:
                conn.executemany(sql, records)
        finally:
            conn.close()

    return flush
