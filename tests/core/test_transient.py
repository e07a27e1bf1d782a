"""is_connection_error/is_transient on real errors of asyncpg, psycopg2, sqlite3, SQLAlchemy."""

from __future__ import annotations

import asyncio
import pickle
import sqlite3
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss
from slipstream._impl.core import transient as _transient
from slipstream._impl.core.transient import CommitOutcomeUnknown

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def raised(fn: Callable[[], Any]) -> BaseException:
    """The exception ``fn()`` raises (the test fails if it raises none)."""
    try:
        fn()
    except BaseException as exc:
        return exc
    raise AssertionError(f"{fn!r} raised nothing")


async def araised(awaitable: Coroutine[Any, Any, Any]) -> BaseException:
    try:
        await awaitable
    except BaseException as exc:
        return exc
    raise AssertionError("nothing was raised")


def sqlite_busy(tmp_path: Path) -> sqlite3.OperationalError:
    """A real "database is locked": a second connection holds the write lock."""
    path = tmp_path / "locked.sqlite"
    holder = sqlite3.connect(path)
    holder.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    holder.commit()
    holder.execute("BEGIN IMMEDIATE")
    writer = sqlite3.connect(path, timeout=0)
    try:
        exc = raised(lambda: writer.execute("INSERT INTO t VALUES (1)"))
    finally:
        writer.close()
        holder.rollback()
        holder.close()
    assert isinstance(exc, sqlite3.OperationalError)
    return exc


class TestPythonAndSqlite:
    @pytest.mark.parametrize(
        ("exc", "expected"),
        [
            (ConnectionResetError("reset by peer"), True),
            (TimeoutError(), True),
            (ConnectionRefusedError(111, "refused"), True),
            (OSError("network unreachable"), True),
            (ValueError("bad row"), False),
            (KeyError("label"), False),
            (TypeError("'str' object cannot be interpreted as an integer"), False),
        ],
    )
    def test_builtin_errors(self, exc: BaseException, expected: bool) -> None:
        """OSError and its subclasses (timeouts included) are connection errors; bugs are not."""
        assert (expected, expected) == (ss.is_connection_error(exc), _transient.is_transient(exc))

    def test_a_poll_timeout_is_not_retried(self) -> None:
        """A poll that waited its whole deadline is a TimeoutError but not transient."""
        exc = ss.PollTimeout(None, polls=3, waited_s=9.0, deadline_s=10.0)
        assert isinstance(exc, TimeoutError)
        assert not _transient.is_transient(exc)

    def test_sqlite_busy_from_a_second_connection(self, tmp_path: Path) -> None:
        """ "database is locked" (SQLITE_BUSY) from a real lock holder is a connection error."""
        exc = sqlite_busy(tmp_path)
        assert (5, True, True) == (
            exc.sqlite_errorcode,
            ss.is_connection_error(exc),
            _transient.is_transient(exc),
        )

    def test_sqlite_locked_shared_cache_table(self) -> None:
        """ "database table is locked" (SQLITE_LOCKED_SHAREDCACHE, an extended code) is one too."""
        uri = f"file:locked_{uuid.uuid4().hex}?mode=memory&cache=shared"
        first = sqlite3.connect(uri, uri=True)
        second = sqlite3.connect(uri, uri=True, timeout=0)
        try:
            first.execute("CREATE TABLE t (id INTEGER)")
            first.commit()
            first.execute("BEGIN")
            first.execute("INSERT INTO t VALUES (1)")
            exc = raised(lambda: second.execute("SELECT * FROM t").fetchall())
        finally:
            first.rollback()
            first.close()
            second.close()
        assert isinstance(exc, sqlite3.OperationalError)
        assert (6, True) == (exc.sqlite_errorcode & 0xFF, ss.is_connection_error(exc))

    def test_other_sqlite_errors_are_not(self, tmp_path: Path) -> None:
        """A missing table (also an OperationalError) and a constraint violation are not
        connection errors, whatever their message."""
        conn = sqlite3.connect(tmp_path / "x.sqlite")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1)")
        missing = raised(lambda: conn.execute("SELECT * FROM no_such_table"))
        duplicate = raised(lambda: conn.execute("INSERT INTO t VALUES (1)"))
        conn.close()
        assert isinstance(missing, sqlite3.OperationalError)
        assert isinstance(duplicate, sqlite3.IntegrityError)
        assert (False, False) == (
            ss.is_connection_error(missing),
            ss.is_connection_error(duplicate),
        )

    def test_commit_outcome_unknown(self) -> None:
        """CommitOutcomeUnknown is a connection error and survives pickling with its batch id."""
        exc = CommitOutcomeUnknown("b-1", "the check failed")
        back = pickle.loads(pickle.dumps(exc))
        assert (True, True, "b-1", str(exc)) == (
            ss.is_connection_error(exc),
            isinstance(exc, ConnectionError),
            back.batch_id,
            str(back),
        )


class TestAsyncpg:
    def test_client_side_errors(self) -> None:
        """The driver's own state errors (InternalClientError "cannot switch to state", a
        closed connection's ConnectionDoesNotExistError) are connection errors; its DataError
        and ClientConfigurationError (bad arguments) are not."""
        asyncpg = pytest.importorskip("asyncpg")
        errors = asyncpg.exceptions
        cases = [
            (
                asyncpg.InternalClientError(
                    "cannot switch to state 15; another operation (2) is in progress"
                ),
                True,
            ),
            (errors.ConnectionDoesNotExistError("connection was closed"), True),
            (errors.ProtocolError("unexpected message"), True),
            (asyncpg.InterfaceError("cannot perform operation: connection is closed"), True),
            (errors._base.DataError("invalid input for query argument $1"), False),
            (errors.ClientConfigurationError("bad dsn"), False),
        ]
        assert [expected for _, expected in cases] == [
            ss.is_connection_error(exc) for exc, _ in cases
        ]

    def test_real_server_errors(self, postgres_url: str, arun: Run) -> None:
        """From a real PostgreSQL: a backend terminated mid-query, queries on a closed or busy
        connection, a statement timeout and a serialization failure are connection errors;
        bad input, a unique or NOT NULL violation, division by zero and an unknown table are
        not."""
        asyncpg = pytest.importorskip("asyncpg")
        table = f"transient_{uuid.uuid4().hex[:8]}"

        async def main() -> list[tuple[str, str, bool]]:
            admin = await asyncpg.connect(postgres_url)
            conn = await asyncpg.connect(postgres_url)
            other = await asyncpg.connect(postgres_url)
            found: list[tuple[str, BaseException]] = []
            try:
                await admin.execute(
                    f"CREATE TABLE {table} (id int PRIMARY KEY, v int NOT NULL);"
                    f"INSERT INTO {table} VALUES (1, 0)"
                )
                victim = await asyncpg.connect(postgres_url)
                sleeping = asyncio.ensure_future(victim.fetchval("SELECT pg_sleep(10)"))
                await asyncio.sleep(0.2)
                await admin.execute("SELECT pg_terminate_backend($1)", victim.get_server_pid())
                found.append(("terminated mid-query", await araised(sleeping)))
                found.append(("closed", await araised(victim.fetchval("SELECT 1"))))
                busy = asyncio.ensure_future(conn.fetchval("SELECT pg_sleep(0.2)"))
                await asyncio.sleep(0.05)
                found.append(("busy", await araised(conn.fetchval("SELECT 1"))))
                await busy
                slow = conn.execute("SET statement_timeout = 20; SELECT pg_sleep(1)")
                found.append(("timeout", await araised(slow)))
                await conn.execute("RESET statement_timeout")
                snapshot = conn.transaction(isolation="repeatable_read")
                await snapshot.start()
                await conn.fetchval(f"SELECT v FROM {table} WHERE id = 1")
                await other.execute(f"UPDATE {table} SET v = v + 1 WHERE id = 1")
                update = conn.execute(f"UPDATE {table} SET v = 2 WHERE id = 1")
                found.append(("serialization", await araised(update)))
                await snapshot.rollback()
                for name, statement, args in [
                    ("bad input", "SELECT $1::int", ("x",)),
                    ("unique", f"INSERT INTO {table} VALUES (1, 1)", ()),
                    ("not null", f"INSERT INTO {table} VALUES (2, NULL)", ()),
                    ("division", "SELECT 1 / 0", ()),
                    ("unknown table", "SELECT * FROM no_such_table_here", ()),
                ]:
                    found.append((name, await araised(conn.execute(statement, *args))))
            finally:
                await admin.execute(f"DROP TABLE IF EXISTS {table}")
                for c in (admin, conn, other):
                    await c.close()
            return [(name, type(e).__name__, ss.is_connection_error(e)) for name, e in found]

        verdicts = arun(main())
        assert [
            ("terminated mid-query", True),
            ("closed", True),
            ("busy", True),
            ("timeout", True),
            ("serialization", True),
            ("bad input", False),
            ("unique", False),
            ("not null", False),
            ("division", False),
            ("unknown table", False),
        ] == [(name, verdict) for name, _, verdict in verdicts]


class TestPsycopg2AndSQLAlchemy:
    def test_psycopg2_terminated_backend(self, postgres_url: str) -> None:
        """psycopg2's "server closed the connection" (OperationalError, no SQLSTATE) and the
        next call's InterfaceError are connection errors; its UniqueViolation is not."""
        psycopg2 = pytest.importorskip("psycopg2")
        dsn = postgres_url
        conn, admin = psycopg2.connect(dsn), psycopg2.connect(dsn)
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute("CREATE TEMP TABLE u (id int PRIMARY KEY)")
                cur.execute("INSERT INTO u VALUES (1)")
                duplicate = raised(lambda: cur.execute("INSERT INTO u VALUES (1)"))
                cur.execute("SELECT pg_terminate_backend(%s)", (conn.get_backend_pid(),))
            lost = raised(lambda: conn.cursor().execute("SELECT 1"))
            closed = raised(lambda: conn.cursor().execute("SELECT 1"))
        finally:
            admin.close()
            conn.close()
        assert (psycopg2.OperationalError, psycopg2.InterfaceError, "23505") == (
            type(lost),
            type(closed),
            getattr(duplicate, "pgcode", None),
        )
        assert (True, True, False) == tuple(
            ss.is_connection_error(e) for e in (lost, closed, duplicate)
        )

    def test_sqlalchemy_wrapping_sqlite(self, tmp_path: Path) -> None:
        """SQLAlchemy's OperationalError around a real "database is locked" is a connection
        error (read from ``orig``); its IntegrityError is not."""
        sa = pytest.importorskip("sqlalchemy")
        path = tmp_path / "sa.sqlite"
        engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        holder = sqlite3.connect(path)
        holder.execute("BEGIN IMMEDIATE")

        def insert(value: int) -> None:
            with engine.begin() as conn:
                conn.execute(sa.text(f"INSERT INTO t VALUES ({value})"))

        try:
            locked = raised(lambda: insert(2))
        finally:
            holder.rollback()
            holder.close()
        duplicate = raised(lambda: insert(1))
        engine.dispose()
        assert (sa.exc.OperationalError, sa.exc.IntegrityError) == (type(locked), type(duplicate))
        assert (True, False) == (ss.is_connection_error(locked), ss.is_connection_error(duplicate))

    def test_sqlalchemy_asyncpg_terminated_backend(self, postgres_url: str, arun: Run) -> None:
        """Through SQLAlchemy's asyncpg dialect, a terminated backend is a connection error (the
        SQLSTATE of the adapted error, or the asyncpg error it was raised from); a NOT NULL
        violation is not."""
        sa = pytest.importorskip("sqlalchemy")
        pytest.importorskip("greenlet")
        asyncpg = pytest.importorskip("asyncpg")
        from sqlalchemy.ext.asyncio import create_async_engine

        async def main() -> tuple[BaseException, BaseException]:
            url = postgres_url.replace("postgresql://", "postgresql+asyncpg://")
            engine = create_async_engine(url)
            admin = await asyncpg.connect(postgres_url)
            try:
                async with engine.connect() as conn:
                    await conn.execute(sa.text("CREATE TEMP TABLE n (id int NOT NULL)"))
                    bad = await araised(conn.execute(sa.text("INSERT INTO n VALUES (NULL)")))
                async with engine.connect() as conn:
                    pid = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
                    await admin.execute("SELECT pg_terminate_backend($1)", pid)
                    await asyncio.sleep(0.1)
                    lost = await araised(conn.execute(sa.text("SELECT 1")))
            finally:
                await admin.close()
                await engine.dispose()
            return lost, bad

        lost, bad = arun(main())
        assert (True, False) == (ss.is_connection_error(lost), ss.is_connection_error(bad))
        assert isinstance(lost, sa.exc.DBAPIError)


class TestTransient:
    def test_http_statuses_and_httpx(self) -> None:
        """HTTP 503/429 and httpx transport errors are transient, not connection errors of a
        database; 404 is neither."""
        httpx = pytest.importorskip("httpx")
        request = httpx.Request("GET", "https://example.invalid/")

        def status(code: int) -> BaseException:
            response = httpx.Response(code, request=request)
            return httpx.HTTPStatusError("status", request=request, response=response)

        cases = [status(503), status(429), status(404), httpx.ReadTimeout("slow", request=request)]
        assert [True, True, False, True] == [_transient.is_transient(e) for e in cases]
        assert [False, False, False] == [ss.is_connection_error(e) for e in cases[:3]]

    def test_every_connection_error_is_transient(self, tmp_path: Path) -> None:
        """is_transient is a superset of is_connection_error (one classifier for both)."""
        asyncpg = pytest.importorskip("asyncpg")
        errors = [
            sqlite_busy(tmp_path),
            asyncpg.InternalClientError("cannot switch to state 15"),
            asyncpg.exceptions.AdminShutdownError("terminating connection"),
            asyncpg.exceptions.TooManyConnectionsError("too many clients"),
            asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
            asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        ]
        assert [True] * len(errors) == [ss.is_connection_error(e) for e in errors]
        assert [True] * len(errors) == [_transient.is_transient(e) for e in errors]


class TestLocalOSErrors:
    @pytest.mark.parametrize(
        "exc",
        [
            FileNotFoundError(2, "No such file or directory"),
            PermissionError(13, "Permission denied"),
            IsADirectoryError(21, "Is a directory"),
        ],
    )
    def test_errors_about_a_path_are_not_retried(self, exc: OSError) -> None:
        """A missing file or a denied permission is not transient (another attempt finds the
        same); connection errors and plain OSErrors still are."""
        assert (False, False) == (ss.is_connection_error(exc), ss.is_transient(exc))
        assert ss.is_transient(ConnectionResetError())
        assert ss.is_transient(OSError(5, "Input/output error"))
