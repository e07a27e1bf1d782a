"""chunked_delete, run_long_statement, ensure_alive: on SQLite files and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss

Run = Callable[[Coroutine[Any, Any, Any]], Any]


async def heartbeat(stop: asyncio.Event, gaps: list[float]) -> None:
    """Tick every 5 ms and record the gaps: a blocked loop shows as a long gap."""
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


def make_cache_db(path: Path, n: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE cache (k TEXT, ns TEXT, v BLOB)")
    conn.executemany(
        "INSERT INTO cache VALUES (?, ?, ?)",
        ((f"k{i}", "genes" if i % 2 else "other", b"x" * 50) for i in range(n)),
    )
    conn.commit()
    conn.close()


@pytest.mark.realtime
class TestChunkedDelete:
    """chunked_delete: chunks, the loop kept free, where= required."""

    def test_sqlite_file_keeps_the_loop_free(self, tmp_path: Path, arun: Run) -> None:
        """Deleting 100,000 rows in chunks runs off the loop: the heartbeat never stalls
        for long, every matching row goes, the others stay."""
        path = tmp_path / "cache.sqlite"
        make_cache_db(path, 200_000)
        progress: list[int] = []

        async def main() -> tuple[int, list[float]]:
            stop, gaps = asyncio.Event(), []  # type: ignore[var-annotated]
            beat = asyncio.create_task(heartbeat(stop, gaps))
            deleted = await ss.chunked_delete(
                path,
                "cache",
                where="ns = ?",
                params=("genes",),
                batch_size=5000,
                on_progress=progress.append,
            )
            stop.set()
            await beat
            return deleted, gaps

        deleted, gaps = arun(main())
        assert 100_000 == deleted
        assert 100_000 == progress[-1]
        assert len(progress) >= 20
        assert max(gaps) < 0.25  # one 5,000-row chunk at most; never the whole delete
        left = sqlite3.connect(path).execute("SELECT count(*), max(ns) FROM cache").fetchone()
        assert (100_000, "other") == left

    def test_postgresql_with_asyncpg(self, postgres_url: str, arun: Run) -> None:
        """On PostgreSQL through asyncpg, chunks by ctid until nothing matches."""
        asyncpg = pytest.importorskip("asyncpg")
        table = f"cache_{uuid.uuid4().hex[:8]}"

        async def main() -> tuple[int, int]:
            conn = await asyncpg.connect(postgres_url)
            try:
                await conn.execute(
                    f"CREATE TABLE {table} AS SELECT g AS id, (g % 3 = 0) AS stale "
                    "FROM generate_series(1, 30000) g"
                )
                deleted = await ss.chunked_delete(
                    conn, table, where="stale = $1", params=(True,), batch_size=2000
                )
                left = await conn.fetchval(f"SELECT count(*) FROM {table}")
                with pytest.raises(TypeError, match="'params'"):  # $1 takes a sequence
                    await ss.chunked_delete(conn, table, where="stale = $1", params={"s": True})
                return deleted, left
            finally:
                await conn.execute(f"DROP TABLE IF EXISTS {table}")
                await conn.close()

        assert (10_000, 20_000) == arun(main())

    def test_sqlalchemy_engine(self, tmp_path: Path, arun: Run) -> None:
        """A SQLAlchemy engine is driven from a worker thread with named parameters."""
        sa = pytest.importorskip("sqlalchemy")
        path = tmp_path / "c.sqlite"
        make_cache_db(path, 3000)
        engine = sa.create_engine(f"sqlite:///{path}")
        deleted = arun(
            ss.chunked_delete(
                engine, "cache", where="ns = :ns", params={"ns": "genes"}, batch_size=400
            )
        )
        engine.dispose()
        assert 1500 == deleted

    def test_bad_arguments(self, tmp_path: Path, arun: Run) -> None:
        """A table that is not an identifier, a zero chunk, an unknown target are named."""
        with pytest.raises(ValueError, match="'table'"):
            arun(ss.chunked_delete(tmp_path / "x.sqlite", "cache; DROP TABLE x", where="TRUE"))
        with pytest.raises(ValueError, match="'batch_size'"):
            arun(ss.chunked_delete(tmp_path / "x.sqlite", "cache", where="TRUE", batch_size=0))
        with pytest.raises(TypeError, match="'pause_s'"):
            arun(ss.chunked_delete(tmp_path / "x.sqlite", "cache", where="TRUE", pause_s=None))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'target'"):
            arun(ss.chunked_delete(42, "cache", where="TRUE"))

    def test_where_is_required(self, tmp_path: Path, arun: Run) -> None:
        """No condition, an empty one, or one passed positionally is refused with a HINT to
        write where="TRUE" on purpose, and nothing is deleted."""
        path = tmp_path / "keep.sqlite"
        make_cache_db(path, 100)
        calls: list[Callable[[], Coroutine[Any, Any, int]]] = [
            lambda: ss.chunked_delete(path, "cache"),  # type: ignore[call-arg]
            lambda: ss.chunked_delete(path, "cache", where=""),
            lambda: ss.chunked_delete(path, "cache", where="   "),
            lambda: ss.chunked_delete(path, "cache", "ns = ?", ("genes",)),  # type: ignore[misc]
        ]
        for call in calls:
            with pytest.raises((TypeError, ValueError), match="where") as info:
                arun(call())
            assert 'where="TRUE"' in str(info.value)
        with pytest.raises(TypeError, match="'where'"):
            arun(ss.chunked_delete(path, "cache", where=None))  # type: ignore[arg-type]
        left = sqlite3.connect(path).execute("SELECT count(*) FROM cache").fetchone()[0]
        assert 100 == left

    def test_where_true_deletes_everything_on_purpose(self, tmp_path: Path, arun: Run) -> None:
        """where="TRUE" deletes every row, in chunks."""
        path = tmp_path / "all.sqlite"
        make_cache_db(path, 2500)
        deleted = arun(ss.chunked_delete(path, "cache", where="TRUE", batch_size=1000))
        left = sqlite3.connect(path).execute("SELECT count(*) FROM cache").fetchone()[0]
        assert (2500, 0) == (deleted, left)


class TestLongStatementsAndPing:
    """run_long_statement in a thread, and ensure_alive's round trip and clear failure."""

    def test_refresh_materialized_view_in_a_thread(self, postgres_url: str, arun: Run) -> None:
        """REFRESH MATERIALIZED VIEW runs on its own connection off the loop; a failing
        statement is rolled back and raised."""
        sa = pytest.importorskip("sqlalchemy")
        pytest.importorskip("psycopg2")
        name = f"mv_{uuid.uuid4().hex[:8]}"
        engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg2://"))
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f"CREATE TABLE {name}_t AS SELECT 1 AS x"))
                conn.execute(sa.text(f"CREATE MATERIALIZED VIEW {name} AS SELECT x FROM {name}_t"))
                conn.execute(sa.text(f"INSERT INTO {name}_t VALUES (2)"))
            seconds = arun(ss.run_long_statement(engine, f"REFRESH MATERIALIZED VIEW {name}"))
            with engine.connect() as conn:
                count = conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one()
            assert (2, True) == (count, seconds >= 0)
            with pytest.raises(sa.exc.ProgrammingError):
                arun(ss.run_long_statement(engine, "REFRESH MATERIALIZED VIEW no_such_view"))
        finally:
            with engine.begin() as conn:
                conn.execute(sa.text(f"DROP MATERIALIZED VIEW IF EXISTS {name}"))
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}_t"))
            engine.dispose()

    def test_sqlite_statement_rolls_back(self, tmp_path: Path, arun: Run) -> None:
        """A statement that fails halfway leaves the file as it was."""
        path = tmp_path / "r.sqlite"
        make_cache_db(path, 10)
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE UNIQUE INDEX cache_k ON cache(k)")
        with pytest.raises(sqlite3.IntegrityError):
            arun(ss.run_long_statement(path, "UPDATE cache SET k = ?", ("same",)))
        same = sqlite3.connect(path).execute("SELECT count(*) FROM cache WHERE k = 'same'")
        assert 0 == same.fetchone()[0]

    def test_ensure_alive(self, postgres_url: str, arun: Run) -> None:
        """A live connection answers; a closed one raises ConnectionError with the cause."""
        asyncpg = pytest.importorskip("asyncpg")

        async def main() -> float:
            conn = await asyncpg.connect(postgres_url)
            seconds = await ss.ensure_alive(conn)
            await conn.close()
            with pytest.raises(ConnectionError, match="did not answer"):
                await ss.ensure_alive(conn)
            return seconds

        assert arun(main()) < 5

    @pytest.mark.realtime
    def test_server_down_is_a_clear_error_not_a_hang(self, arun: Run) -> None:
        """ensure_alive on an engine whose server is not there fails fast, naming the cause."""
        sa = pytest.importorskip("sqlalchemy")
        pytest.importorskip("psycopg2")
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        engine = sa.create_engine(
            f"postgresql+psycopg2://postgres@127.0.0.1:{port}/test",
            connect_args={"connect_timeout": 2},
        )
        t0 = time.perf_counter()
        with pytest.raises(ConnectionError, match="did not answer") as info:
            arun(ss.ensure_alive(engine))
        assert time.perf_counter() - t0 < 5
        assert isinstance(info.value.__cause__, sa.exc.OperationalError)
        engine.dispose()
