"""``ss.sqlalchemy_flush``: inserts or upserts through SQLAlchemy 2, sync or async, exactly once.

The sync and the async flush are one body of steps (``steps.py``): a ``sessionmaker`` gets the
flush run by ``run_sync``, an ``async_sessionmaker`` the one run by ``run_async``; every
session call below is ``yield session.call(...)`` and means the same in both.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...core.callables import kind_of
from ...core.checks import check_callable
from .lifecycle import AsyncFlush, ManagedFlush, SyncFlush, SyncManagedFlush
from .markers import (
    CHECK_LOCK_TIMEOUT,
    DEFAULT_MARKER_TABLE,
    RETENTION_S,
    Attempt,
    Markers,
    exactly_once,
    markers_of,
)
from .sql import names, swallow_after_commit
from .steps import Steps, run_async, run_sync

__all__ = ["sqlalchemy_flush"]


def sqlalchemy_flush(
    sessionmaker: Any,
    table: Any,
    *,
    conflict: Sequence[str] | None = None,
    update: Sequence[str] | None = None,
    marker_table: str | None = DEFAULT_MARKER_TABLE,
    marker_retention_s: float = RETENTION_S,
    setup: Callable[[Any], Any] | None = None,
) -> ManagedFlush | SyncManagedFlush:
    """A flush function writing mapping rows through SQLAlchemy 2, sync or async, each batch
    exactly once on PostgreSQL and SQLite (see the module doc): ``flush(rows, batch_id=None)``.

    It has a lifecycle, which a pipeline and ``BatchWriter`` run: ``flush.setup()`` (sync for
    a sync flush, async for an async one) once before the first write runs ``setup`` and
    creates the marker table; ``flush.aclose()`` (and ``flush.close()`` on the sync flush) at
    the end forgets it. A flush called before ``setup()`` runs it first.

    Args:
        sessionmaker: a ``sessionmaker`` (sync flush) or ``async_sessionmaker`` (async flush).
        table: a ``Table`` or a mapped class.
        conflict: the unique columns of an upsert (PostgreSQL and SQLite ``ON CONFLICT``).
        update: the columns an upsert updates (default: all others; none: DO NOTHING).
        marker_table: the table of batch markers, created if missing; None: no markers,
            at-least-once (needed on databases other than PostgreSQL and SQLite).
        marker_retention_s: markers older than this are deleted when the flush first writes.
        setup: ``setup(connection)`` run once by ``flush.setup()`` with the session's
            ``Connection`` (an ``AsyncConnection`` for an async flush: ``setup`` may then be
            async), committed after it: e.g. the DDL, ``setup=meta.create_all`` (sync) or
            ``setup=lambda conn: conn.run_sync(meta.create_all)`` (async).
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
    conflict = names(conflict, "conflict", allow_none=True)
    update = names(update, "update", allow_none=True)
    check_callable("setup", setup, allow_none=True)
    is_async = type(sessionmaker).__name__ == "async_sessionmaker"
    if setup is not None and not is_async and kind_of(setup) != "sync":
        raise TypeError(
            f"'setup' must be a sync function for a sync sessionmaker, got {setup!r}"
            "\nHINT: pass an async_sessionmaker for an async setup"
        )
    markers = markers_of(marker_table, marker_retention_s)
    bind = getattr(sessionmaker, "kw", {}).get("bind")
    known = getattr(getattr(bind, "dialect", None), "name", None)
    if markers is not None and known is not None:
        Markers.check_dialect(known)

    def statement(dialect: str) -> Any:
        if conflict is None:
            return sa.insert(table)
        if dialect not in ("postgresql", "sqlite"):
            raise TypeError(f"upserts are supported on PostgreSQL and SQLite, not {dialect!r}")
        module = importlib.import_module(f"sqlalchemy.dialects.{dialect}")
        stmt = module.insert(table)
        others = [c.name for c in table.columns if c.name not in conflict]
        updated = others if update is None else list(update)
        if not updated:
            return stmt.on_conflict_do_nothing(index_elements=list(conflict))
        return stmt.on_conflict_do_update(
            index_elements=list(conflict), set_={c: stmt.excluded[c] for c in updated}
        )

    mark = delete_acked = None
    if markers is not None:
        mark = sa.text(markers.mark_sql(":batch_id"))
        delete_acked = sa.text(markers.delete_sql(":ids")).bindparams(
            sa.bindparam("ids", expanding=True)
        )

    def dialect_of(session: Any) -> str:
        return str(session.get_bind().dialect.name)

    def setup_statements(dialect: str) -> tuple[Any, Any, Any, dict[str, Any]]:
        """(exists, create, sweep, sweep parameters) for the marker table on ``dialect``."""
        assert markers is not None
        Markers.check_dialect(dialect)
        create = sa.text(markers.ddl(dialect))
        sweep = sa.text(markers.sweep_sql(dialect, ":s"))
        if dialect == "postgresql":
            exists = sa.text("SELECT to_regclass(:name) IS NOT NULL").bindparams(name=markers.table)
            return exists, create, sweep, {"s": markers.retention_s}
        bare = markers.name.rpartition(".")[2]
        exists = sa.text(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = :name"
        ).bindparams(name=bare)
        return exists, create, sweep, {"s": f"-{markers.retention_s} seconds"}

    def prepare() -> Steps[None]:
        assert markers is not None
        session = sessionmaker()
        try:
            exists, create, sweep, params = setup_statements(dialect_of(session))
            try:
                if not (yield session.execute(exists)).scalar():
                    yield session.execute(create)
                    yield session.commit()
            except Exception as exc:
                yield session.rollback()
                markers.create_failed(exc)
            yield session.execute(sweep, params)
            yield session.commit()
        finally:
            yield session.close()

    def transaction(
        session: Any, params: list[dict[str, Any]], bid: str, state: Attempt
    ) -> Steps[None]:
        stale: list[str] = []
        try:
            if markers is not None:
                stale = markers.stale()
                if stale:
                    yield session.execute(delete_acked, {"ids": stale})
                if (yield session.execute(mark, {"batch_id": bid})).rowcount == 0:
                    yield session.rollback()
                    state.already_committed(bid)
                    return
            yield session.execute(statement(dialect_of(session)), params)
        except BaseException:
            with contextlib.suppress(Exception):
                yield session.rollback()
            raise
        state.commit_sent = True
        yield session.commit()
        state.done = True
        if markers is not None:
            markers.forget(stale)

    def attempt(params: list[dict[str, Any]], bid: str, state: Attempt) -> Steps[None]:
        session = sessionmaker()
        try:
            yield from transaction(session, params, bid, state)
        finally:
            try:
                yield session.close()
            except Exception as exc:  # returning the connection: the outcome is known
                if state.done:
                    swallow_after_commit("closing the session", exc)

    def probe(bid: str) -> Steps[bool]:
        """After a lost COMMIT reply: True when the batch's marker is in (on a new session),
        rolled back so it leaves none."""
        session = sessionmaker()
        try:
            try:
                if dialect_of(session) == "postgresql":
                    yield session.execute(
                        sa.text(f"SET LOCAL lock_timeout = '{CHECK_LOCK_TIMEOUT}'")
                    )
                result = yield session.execute(mark, {"batch_id": bid})
            finally:
                yield session.rollback()
        finally:
            yield session.close()
        return bool(result.rowcount == 0)

    def open_steps() -> Steps[None]:
        """The user's setup on the session's connection, committed; then the marker table."""
        if setup is not None:
            session = sessionmaker()
            try:
                conn = yield session.connection()
                result = setup(conn)
                if is_async:
                    yield _awaitable(result)
                yield session.commit()
            finally:
                yield session.close()
        if markers is not None and not markers.ready:
            yield from prepare()
            markers.ready = True

    def steps(rows: list[Mapping[str, Any]], batch_id: str | None) -> Steps[None]:
        return exactly_once(
            markers,
            batch_id,
            rows,
            lambda rows: [dict(r) for r in rows],
            prepare=prepare,
            attempt=attempt,
            probe=probe,
        )

    label = f"sqlalchemy_flush({table.name!r})"
    if is_async:

        async def write_async(rows: list[Mapping[str, Any]], batch_id: str | None) -> None:
            await run_async(steps(rows, batch_id))

        async def open_async() -> None:
            await run_async(open_steps())

        async def close_async() -> None:
            return None  # the sessionmaker (and its engine) is the caller's

        return AsyncFlush(label, write_async, open_async, close_async)

    def write_sync(rows: list[Mapping[str, Any]], batch_id: str | None) -> None:
        run_sync(steps(rows, batch_id))

    return SyncFlush(label, write_sync, lambda: run_sync(open_steps()))


async def _awaitable(value: Any) -> Any:
    """``value`` awaited if it is awaitable (an async setup's coroutine), else itself."""
    return await value if inspect.isawaitable(value) else value
