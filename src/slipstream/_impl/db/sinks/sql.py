"""What every flush function checks and builds the same way: identifiers, column lists, batch
ids, records and the ``INSERT`` (or upsert) text."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

__all__ = [
    "BatchFlush",
    "batch_id_of",
    "columns_of",
    "ident",
    "insert_sql",
    "logger",
    "names",
    "new_batch_id",
    "record",
    "swallow_after_commit",
]

logger = logging.getLogger("slipstream.writer")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
# Batch ids are inlined as SQL literals by asyncpg_flush (BEGIN and the marker in one round
# trip), so they are held to characters that need no quoting.
_BATCH_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


class BatchFlush(Protocol):
    """A flush function that takes a batch id: ``await flush(rows, batch_id="...")``."""

    def __call__(self, rows: list[Any], batch_id: str | None = None) -> Awaitable[None]: ...


def new_batch_id() -> str:
    """A fresh batch id (32 hex digits)."""
    return uuid.uuid4().hex


def ident(name: str, what: str) -> str:
    """``name`` (``table`` or ``schema.table``) quoted; anything else is refused."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"'{what}' must be a plain SQL identifier, got {name!r}")
    return ".".join(f'"{part}"' for part in name.split("."))


def names(value: Any, what: str, *, allow_none: bool = False) -> list[str] | None:
    """A list of column names (a single string is refused: it would be read letter by letter)."""
    if value is None and allow_none:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(
            f"'{what}' must be a sequence of column names, got {type(value).__name__} {value!r}"
            + (f'\nHINT: {what}=["{value}"]' if isinstance(value, str) else "")
        )
    for name in value:
        ident(name, what)
    return list(value)


def columns_of(
    columns: Any, conflict: Any, update: Any
) -> tuple[list[str], list[str] | None, list[str] | None]:
    """The checked column lists of a flush: the columns written (at least one), and the
    upsert's conflict and update columns (None when not given)."""
    written = names(columns, "columns") or []
    if not written:
        raise ValueError("'columns' must name at least one column")
    return (
        written,
        names(conflict, "conflict", allow_none=True),
        names(update, "update", allow_none=True),
    )


def batch_id_of(batch_id: str | None) -> str:
    """The batch id a flush call writes under: the caller's (checked), or a fresh one."""
    if batch_id is None:
        return new_batch_id()
    if not isinstance(batch_id, str):
        raise TypeError(f"'batch_id' must be a str or None, got {type(batch_id).__name__}")
    if not _BATCH_ID.match(batch_id):
        raise ValueError(
            f"'batch_id' must be 1-200 characters from A-Z a-z 0-9 _ . : -, got {batch_id!r}"
        )
    return batch_id


def record(row: Any, columns: Sequence[str]) -> tuple[Any, ...]:
    """``row`` (a mapping or a sequence) as a tuple in the order of ``columns``."""
    if type(row) is tuple and len(row) == len(columns):
        return row  # already a record: the hot path of COPY
    if isinstance(row, Mapping):
        return tuple(row[c] for c in columns)  # a missing column is this row's KeyError
    values = tuple(row)
    if len(values) != len(columns):
        raise _WrongRowLength(f"row {row!r} has {len(values)} values for {len(columns)} columns")
    return values


class _WrongRowLength(ValueError, TypeError):
    """A row with another number of values than the sink has columns: a ``ValueError`` as it
    always was, and a ``TypeError`` so that the writers see a shape error (a batch of rows all
    that long stops the run instead of being bisected row by row)."""


def insert_sql(
    table: str,
    columns: Sequence[str],
    conflict: Sequence[str] | None,
    update: Sequence[str] | None,
    placeholder: Callable[[int], str],
) -> str:
    """``INSERT`` (or upsert with ``ON CONFLICT``, PostgreSQL and SQLite >= 3.24 alike)."""
    quoted = [ident(c, "columns") for c in columns]
    placeholders = ", ".join(placeholder(i) for i in range(len(columns)))
    sql = f"INSERT INTO {ident(table, 'table')} ({', '.join(quoted)}) VALUES ({placeholders})"
    if conflict is None:
        return sql
    keys = ", ".join(ident(c, "conflict") for c in conflict)
    updated = [c for c in columns if c not in conflict] if update is None else list(update)
    if not updated:
        return sql + f" ON CONFLICT ({keys}) DO NOTHING"
    sets = ", ".join(f"{ident(c, 'update')} = excluded.{ident(c, 'update')}" for c in updated)
    return sql + f" ON CONFLICT ({keys}) DO UPDATE SET {sets}"


def swallow_after_commit(what: str, exc: BaseException) -> None:
    """Log an error that came after the batch was committed: the rows are in, so it is no
    failure of the flush (raising it would make the writer write the batch again)."""
    logger.warning(
        "slipstream: %s failed after the batch was committed (ignored, the rows are in): %s: %s",
        what,
        type(exc).__name__,
        exc,
    )
