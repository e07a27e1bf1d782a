"""The psycopg watchers (psycopg 3, sync and async, and psycopg2): a cursor class of the
connection's own kind that times ``execute`` and ``executemany``, set through the connection's
public ``cursor_factory`` attribute.

Each statement gets its duration (the call, results fetched by the driver included: psycopg
reads a client-side cursor's rows in ``execute``) and the exact call site, taken before the
call. Not seen: ``conn.commit()`` and ``with conn.transaction():`` (psycopg sends those
without a cursor and has no hook for them; a ``COMMIT`` sent with ``execute`` is seen),
``copy()``, psycopg 3's ``stream()``, and cursors made after the user sets another
``cursor_factory``. The watching class subclasses the factory the connection had (a
``RealDictCursor``, a ``ClientCursor``), so rows come back as before.
"""

from __future__ import annotations

import sys
from time import perf_counter
from typing import Any

from .scope import CURRENT, call_site, record

__all__ = ["instrument_psycopg", "is_psycopg"]

# a cursor class -> its watching subclass: one per class the program defines
_WATCHING: dict[type, type] = {}  # noqa: SLP501


def _text(cursor: Any, query: Any) -> str:
    if isinstance(query, str):
        return query
    if isinstance(query, bytes):
        return query.decode("utf-8", "replace")
    as_string = getattr(query, "as_string", None)  # psycopg's sql.Composable, either version
    if as_string is not None:
        try:
            return str(as_string(cursor.connection))
        except Exception:  # a composition the driver would reject: it raised already
            pass
    return f"<{type(query).__name__}>"


def _sync_subclass(base: type) -> type:
    class WatchingCursor(base):  # type: ignore[misc]
        __slots__ = ()

        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            scope = CURRENT.get()
            if scope is None:
                return super().execute(query, *args, **kwargs)
            site = call_site(2)
            t0 = perf_counter()
            try:
                return super().execute(query, *args, **kwargs)
            finally:
                record(scope, _text(self, query), perf_counter() - t0, site)

        def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            scope = CURRENT.get()
            if scope is None:
                return super().executemany(query, *args, **kwargs)
            site = call_site(2)
            t0 = perf_counter()
            try:
                return super().executemany(query, *args, **kwargs)
            finally:
                record(scope, _text(self, query), perf_counter() - t0, site)

    return WatchingCursor


def _async_subclass(base: type) -> type:
    class WatchingAsyncCursor(base):  # type: ignore[misc]
        __slots__ = ()

        async def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            scope = CURRENT.get()
            if scope is None:
                return await super().execute(query, *args, **kwargs)
            site = call_site(2)
            t0 = perf_counter()
            try:
                return await super().execute(query, *args, **kwargs)
            finally:
                record(scope, _text(self, query), perf_counter() - t0, site)

        async def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            scope = CURRENT.get()
            if scope is None:
                return await super().executemany(query, *args, **kwargs)
            site = call_site(2)
            t0 = perf_counter()
            try:
                return await super().executemany(query, *args, **kwargs)
            finally:
                record(scope, _text(self, query), perf_counter() - t0, site)

    return WatchingAsyncCursor


def _watching(base: type, *, is_async: bool) -> type:
    if base in _WATCHING.values():
        return base  # already watching (instrumented twice)
    cls = _WATCHING.get(base)
    if cls is None:
        cls = _async_subclass(base) if is_async else _sync_subclass(base)
        cls.__qualname__ = cls.__name__ = f"Watching{base.__name__}"
        cls.__module__ = __name__
        _WATCHING[base] = cls
    return cls


def is_psycopg(target: object) -> bool:
    """Is ``target`` a psycopg 3 ``Connection`` / ``AsyncConnection`` or a psycopg2 connection?"""
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(target, (psycopg.Connection, psycopg.AsyncConnection)):
        return True
    ext = sys.modules.get("psycopg2.extensions")
    return ext is not None and isinstance(target, ext.connection)


def instrument_psycopg(conn: Any) -> None:
    """Set ``conn.cursor_factory`` to a watching subclass of the one it has; idempotent."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(conn, psycopg.AsyncConnection):
        conn.cursor_factory = _watching(conn.cursor_factory, is_async=True)
    elif psycopg is not None and isinstance(conn, psycopg.Connection):
        conn.cursor_factory = _watching(conn.cursor_factory, is_async=False)
    else:  # psycopg2: None means its C cursor
        from psycopg2.extensions import cursor  # type: ignore[import-untyped]

        conn.cursor_factory = _watching(conn.cursor_factory or cursor, is_async=False)
