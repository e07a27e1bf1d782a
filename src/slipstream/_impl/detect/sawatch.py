"""The SQLAlchemy watcher: statements through the dialect's execute events, commits through
the ORM session's.

Why these hooks and not ``before/after_cursor_execute``: any listener on an engine's
*connection* events (``before_cursor_execute``, ``commit``, even a no-op one) switches every
statement on that engine onto SQLAlchemy's evented path, which re-packs the parameters for the
listeners: about 3.5 us a statement before a listener runs (measured on SQLAlchemy 2.1, Core on
sqlite: 14.8 us bare, 18.2 us with one no-op ``commit`` listener). The *dialect* events
``do_execute``, ``do_executemany`` and ``do_execute_no_params`` cost 0.4 us: with no scope
active the listener returns False and SQLAlchemy runs the statement as always; inside a scope
it runs the dialect's own method (``context.dialect.do_execute``), so dialect behaviour is
kept, timing exactly the DBAPI call, and returns True.

Commits: ``Session``'s ``after_commit`` (ORM and ``AsyncSession``), registered once on the
``Session`` class and counted only for sessions bound to an instrumented engine (or with no
single bind). A Core ``Connection.commit()`` has no hook outside the connection events; it is
counted only when asked for (``ss.instrument(engine, core_commits=True)``), at that path's
price.
"""

from __future__ import annotations

import sys
import weakref
from time import perf_counter
from typing import Any

from .scope import CURRENT, call_site, record

__all__ = ["instrument_sqlalchemy", "sqlalchemy_engine"]

# The listener's caller and its caller are SQLAlchemy's private execute functions
# (``_exec_single_context`` / ``_exec_insertmany_context`` / ``_cursor_execute``, then
# ``_execute_context`` or an execution context's method): never user code, so the walk to the
# user's frame starts above them (two frames fewer to materialise: about 0.6 us).
_PAST_SQLALCHEMY = 4

_ENGINES: weakref.WeakSet[Any] = weakref.WeakSet()
_CORE_COMMITS: weakref.WeakSet[Any] = weakref.WeakSet()  # their commits: the connection event
_SESSION_HOOKED = False


def _do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    scope = CURRENT.get()
    if scope is None:
        return False
    t0 = perf_counter()
    context.dialect.do_execute(cursor, statement, parameters, context)
    record(scope, statement, perf_counter() - t0, call_site(_PAST_SQLALCHEMY))
    return True


def _do_executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    scope = CURRENT.get()
    if scope is None:
        return False
    t0 = perf_counter()
    context.dialect.do_executemany(cursor, statement, parameters, context)
    record(scope, statement, perf_counter() - t0, call_site(_PAST_SQLALCHEMY))
    return True


def _do_execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
    scope = CURRENT.get()
    if scope is None:
        return False
    t0 = perf_counter()
    context.dialect.do_execute_no_params(cursor, statement, context)
    record(scope, statement, perf_counter() - t0, call_site(_PAST_SQLALCHEMY))
    return True


def _core_commit(conn: Any) -> None:
    scope = CURRENT.get()
    if scope is not None:
        record(scope, "COMMIT", None, call_site(2))


def _session_commit(session: Any) -> None:
    scope = CURRENT.get()
    if scope is None:
        return
    bind = session.bind
    if bind is not None:
        engine = getattr(bind, "engine", bind)
        if engine not in _ENGINES or engine in _CORE_COMMITS:
            return  # not watched, or counted by the connection's own commit event
    record(scope, "COMMIT", None, call_site(2))


def sqlalchemy_engine(target: object) -> Any:
    """The sync ``Engine`` behind ``target``, or None when it is not a SQLAlchemy engine."""
    engine_mod = sys.modules.get("sqlalchemy.engine")
    if engine_mod is None:
        return None
    if isinstance(target, engine_mod.Engine):
        return target
    async_mod = sys.modules.get("sqlalchemy.ext.asyncio")
    if async_mod is not None and isinstance(target, async_mod.AsyncEngine):
        return target.sync_engine
    return None


def instrument_sqlalchemy(engine: Any, *, core_commits: bool) -> None:
    """Hook a sync ``Engine`` (an ``AsyncEngine``'s ``sync_engine``); idempotent."""
    global _SESSION_HOOKED
    from sqlalchemy import event

    listeners: list[tuple[str, Any]] = [
        ("do_execute", _do_execute),
        ("do_executemany", _do_executemany),
        ("do_execute_no_params", _do_execute_no_params),
    ]
    if core_commits:
        listeners.append(("commit", _core_commit))
        _CORE_COMMITS.add(engine)
    for name, fn in listeners:
        if not event.contains(engine, name, fn):
            event.listen(engine, name, fn)
    _ENGINES.add(engine)
    if not _SESSION_HOOKED:
        from sqlalchemy.orm import Session

        event.listen(Session, "after_commit", _session_commit)
        _SESSION_HOOKED = True
