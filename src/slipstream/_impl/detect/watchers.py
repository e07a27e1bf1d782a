"""The hooks on the real drivers, each through the driver's public API (no monkeypatching).

- sqlite3: ``Connection.set_trace_callback``: every statement the library runs, with its values
  bound in, and the ``BEGIN``/``COMMIT`` the module adds; no durations (the callback runs
  before the statement). It replaces any trace callback the connection had (there is one).
- SQLAlchemy (``Engine``, and ``AsyncEngine`` through its ``sync_engine``): the dialect's
  ``do_execute`` events time each statement, ``Session.after_commit`` counts ORM commits, and
  Core commits only with ``core_commits=True`` (sawatch.py says why).
- asyncpg (``Connection``, or a pool's connection): ``add_query_logger`` gives each query with
  its ``elapsed`` time, but hands the record to the loop (``call_soon``) after the query, so the
  caller's stack is gone: the call site is the place the scope was entered.
- psycopg 3 (``Connection``, ``AsyncConnection``) and psycopg2: the connection's
  ``cursor_factory`` becomes a timing subclass of its own (pgwatch.py); no commits.
- pymongo (``MongoClient``, ``AsyncMongoClient``): a ``monitoring.CommandListener`` given at
  construction (``event_listeners=[ss.mongo_listener()]``; mongowatch.py).

The hooks stay installed; with no scope active each costs one context-variable read.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from typing import Any

from .httpwatch import instrument_httpx, is_httpx_client
from .mongowatch import check_mongo_client, is_mongo_client
from .pgwatch import instrument_psycopg, is_psycopg
from .sawatch import instrument_sqlalchemy, sqlalchemy_engine
from .scope import CURRENT, Watch, call_site, mark_instrumented, record

__all__ = ["instrument", "watch"]


def _sqlite_trace(sql: str) -> None:
    scope = CURRENT.get()
    if scope is not None:
        record(scope, sql, None, call_site(2))


# What asyncpg sends on its own: the type introspection on a connection's first use of a type,
# and the reset a pool runs when a connection is released. Not the user's queries: a pool reset
# per released connection would otherwise look like an N+1 of the user's (it repeats per item).
_ASYNCPG_OWN: set[str] = set()


def _asyncpg_logged(logged: Any) -> None:
    scope = CURRENT.get()
    if scope is not None:
        query = logged.query
        # the introspection also turns JIT off and back on around its query (inline text)
        if query not in _ASYNCPG_OWN and "set_config('jit'" not in query:
            record(scope, query, logged.elapsed, None)


def _instrument_asyncpg(conn: Any) -> None:
    if not _ASYNCPG_OWN:
        from asyncpg import introspection  # type: ignore[import-untyped]

        _ASYNCPG_OWN.update(
            v for k, v in vars(introspection).items() if k.isupper() and isinstance(v, str)
        )
    reset = conn.get_reset_query()  # public; built once per connection from its server's caps
    if reset:
        _ASYNCPG_OWN.add(reset)
    conn.add_query_logger(_asyncpg_logged)


def _usable_from_other_threads(conn: sqlite3.Connection) -> bool:
    """Was ``conn`` opened with ``check_same_thread=False``? (Python does not say: another
    thread asks it for a cursor, which only such a connection gives.)"""
    answer: list[bool] = []

    def probe() -> None:
        try:
            conn.cursor().close()
        except sqlite3.ProgrammingError:
            answer.append(False)  # this thread may not use it (or it is closed)
        else:
            answer.append(True)

    thread = threading.Thread(target=probe, name="slipstream-sqlite-probe")
    thread.start()
    thread.join()
    return answer == [True]


def _is_asyncpg(target: object) -> bool:
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is None:
        return False
    return isinstance(target, (asyncpg.Connection, asyncpg.pool.PoolConnectionProxy))


def instrument(target: object, *, core_commits: bool = False) -> None:
    """Hook ``target`` so that statements it sends inside an ``ss.watch()`` scope are counted.

    Idempotent. ``target``: a ``sqlite3.Connection``, a SQLAlchemy ``Engine`` or
    ``AsyncEngine``, an httpx ``Client`` / ``AsyncClient``, an ``asyncpg.Connection``
    (for a pool, call it from the pool's ``init``: ``async def init(conn):
    ss.instrument(conn)``), a psycopg 3 ``Connection`` / ``AsyncConnection`` or a psycopg2
    connection (for a psycopg_pool pool: ``configure=ss.instrument``), or a pymongo client
    built with ``event_listeners=[ss.mongo_listener()]`` (pymongo takes listeners only at
    construction; this checks it has one).

    ``core_commits`` (SQLAlchemy only): also count Core ``Connection.commit()`` calls
    (``engine.begin()`` blocks, ``conn.commit()``). ORM ``Session`` commits are always counted;
    Core commits need a connection event, which puts every statement of the engine on
    SQLAlchemy's evented path: about 3.5 us a statement more.

    Raises:
        TypeError: ``target`` is none of these, or ``core_commits`` is not a bool.
        ValueError: a ``sqlite3.Connection`` opened with ``check_same_thread=False``, or a
            pymongo client built without ``ss.mongo_listener()``.
    """
    if not isinstance(core_commits, bool):
        raise TypeError(f"core_commits must be a bool, got {type(core_commits).__name__}")
    mark_instrumented()  # a refused target below sets it too: harmless (scopes open, see nothing)
    if isinstance(target, sqlite3.Connection):
        if _usable_from_other_threads(target):
            raise ValueError(
                "cannot watch a sqlite3 connection that other threads may use "
                "(check_same_thread=False): with a trace callback, CPython's sqlite3 deadlocks "
                "when two threads share it (one waits for the GIL inside the callback while "
                "holding the connection's lock, the other holds the GIL waiting for that lock). "
                "Open it with check_same_thread=True (one thread), or open one connection per "
                "thread and instrument each in its thread"
            )
        target.set_trace_callback(_sqlite_trace)
        return
    engine = sqlalchemy_engine(target)
    if engine is not None:
        instrument_sqlalchemy(engine, core_commits=core_commits)
        return
    if is_httpx_client(target):
        instrument_httpx(target)
        return
    if _is_asyncpg(target):
        _instrument_asyncpg(target)
        return
    if is_psycopg(target):
        instrument_psycopg(target)
        return
    if is_mongo_client(target):
        check_mongo_client(target)
        return
    raise TypeError(
        "watch() targets must be a sqlite3.Connection, a SQLAlchemy Engine or AsyncEngine, an "
        "asyncpg.Connection, a psycopg or psycopg2 connection, a pymongo client or an httpx "
        f"Client/AsyncClient; got {type(target).__name__}"
    )


def watch(
    *targets: Any,
    min_repeats: int = 5,
    min_total_s: float = 0.05,
    slow_s: float = 1.0,
    record_to: str | None = None,
) -> Watch:
    """Watch the statements a block sends, and find N+1 queries and per-item writes in them.

    Args:
        *targets: connections, engines or clients to hook first (what :func:`instrument`
            takes); hooked once, they stay hooked.
        min_repeats: repeats of one statement from one call site that make a finding (>= 2;
            Sentry's default 5; tests often use 2).
        min_total_s: seconds those repeats must take in total, when the driver times them.
        slow_s: a statement taking at least this long goes in the report's ``slow`` list.
        record_to: a runtime findings file to merge the findings into at exit (the file
            ``slipstream scan --runtime`` reads).

    Raises:
        TypeError: a target is not a connection or engine slipstream can hook.
        ValueError: a gate is out of range.

    Example::

        with ss.watch(conn, min_repeats=2) as w:
            for order in orders:
                conn.execute("SELECT * FROM users WHERE id = ?", (order.user_id,))
        print(w.report.findings[0])  # SLP201 query-in-loop at this file's line 3
    """
    for target in targets:
        instrument(target)
    return Watch(
        min_repeats=min_repeats,
        min_total_s=min_total_s,
        slow_s=slow_s,
        record_to=record_to,
    )
