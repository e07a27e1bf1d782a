"""Sources: a query read in chunks (SQLite, PostgreSQL) and a directory keyed by content hash."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss

Run = Callable[[Coroutine[Any, Any, Any]], Any]


async def collect(source: Any) -> list[Any]:
    return [item async for item in source]


def write(path: Path, text: str, mtime: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, ns=(mtime, mtime))


class TestQuerySource:
    def test_sqlite_query_source_reads_in_chunks(self, tmp_path: Path, vrun: Run) -> None:
        """A SQLite query with parameters is read batch_size rows per round trip, as dicts."""
        db = tmp_path / "genes.sqlite"
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE genes (id INTEGER, name TEXT)")
        conn.executemany("INSERT INTO genes VALUES (?, ?)", [(i, f"g{i}") for i in range(250)])
        conn.commit()
        conn.close()
        source = ss.query_source(
            db, "SELECT id, name FROM genes WHERE id >= ? ORDER BY id", (10,), batch_size=100
        )
        rows = vrun(collect(source))
        assert [{"id": i, "name": f"g{i}"} for i in range(10, 250)] == rows
        assert 3 == source.round_trips  # 100 + 100 + 40

    def test_postgres_query_source_reads_in_chunks(self, postgres_url: str, arun: Run) -> None:
        """A PostgreSQL query is read through a server-side cursor, batch_size rows per round
        trip (a real loop: asyncpg's connect timeout would fire at once on a virtual clock)."""
        import asyncpg

        async def main() -> tuple[list[Any], int]:
            conn = await asyncpg.connect(postgres_url)
            try:
                source = ss.query_source(
                    conn, "SELECT g AS id FROM generate_series(1, $1) AS g", (500,), batch_size=200
                )
                rows = await collect(source)
                return rows, source.round_trips
            finally:
                await conn.close()

        rows, trips = arun(main())
        assert [{"id": i} for i in range(1, 501)] == rows
        assert 3 == trips

    def test_query_source_feeds_a_pipeline_and_counts_its_round_trips(
        self, tmp_path: Path, vrun: Run
    ) -> None:
        """A query source's rows are a pipeline's items, and its fetches are reported as the
        run's source round trips."""
        db = tmp_path / "q.sqlite"
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE t (id INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(120)])
        conn.commit()
        conn.close()
        report = vrun(
            ss.Pipeline(
                ss.query_source(db, "SELECT id FROM t", batch_size=50),
                [ss.Stage(lambda row: row["id"], name="id")],
                key=lambda row: row["id"],
            ).run()
        )
        assert (120, 3) == (report.ok, report.source_round_trips)

    def test_bad_query_source_arguments(self, tmp_path: Path) -> None:
        """A zero batch size, an empty query or an unknown target is refused by name."""
        with pytest.raises(ValueError, match="'batch_size'"):
            ss.query_source(tmp_path / "x", "SELECT 1", batch_size=0)
        with pytest.raises(ValueError, match="'sql'"):
            ss.query_source(tmp_path / "x", " ")
        with pytest.raises(TypeError, match="'target'"):
            ss.query_source(3.5, "SELECT 1")


class TestDirectorySource:
    def test_directory_source_hashes_once_and_keys_by_content(
        self, tmp_path: Path, vrun: Run
    ) -> None:
        """Files are hashed once (the hash cache serves the next source), and an edited file
        gets a new key while the others keep theirs."""
        root = tmp_path / "models"
        write(root / "a.bin", "alpha")
        write(root / "sub" / "b.bin", "beta")
        cache = tmp_path / "hashes.sqlite"
        first = ss.DirectorySource(root, hash_cache=cache)
        items = vrun(collect(first))
        assert ["a.bin", "sub/b.bin"] == [i.relpath for i in items]
        assert (2, 0) == (first.hashed, first.reused)
        again = ss.DirectorySource(root, hash_cache=cache)  # a new process would do the same
        items2 = vrun(collect(again))
        assert (0, 2) == (again.hashed, again.reused)
        assert [i.key for i in items] == [i.key for i in items2]
        write(root / "a.bin", "alpha, edited")
        items3 = vrun(collect(again))
        assert (1, 1) == (again.hashed, again.reused)
        assert items3[0].key != items[0].key
        assert items3[1].key == items[1].key

    def test_directory_pipeline_skips_unchanged_files_on_the_next_run(
        self, tmp_path: Path, vrun: Run
    ) -> None:
        """With a checkpoint, the next run processes only the file whose content changed."""
        root = tmp_path / "files"
        for i in range(5):
            write(root / f"f{i}.txt", f"content {i}")
        seen: list[str] = []

        async def process(item: ss.FileItem) -> str:
            seen.append(item.relpath)
            await asyncio.sleep(0)
            return item.key

        def run() -> ss.RunReport:
            return vrun(
                ss.Pipeline(
                    ss.DirectorySource(root, hash_cache=tmp_path / "h.sqlite"),
                    [ss.Stage(process)],
                    checkpoint=ss.Checkpoint(tmp_path / "c.sqlite"),
                    run_id="models",
                ).run()
            )

        assert 5 == run().ok
        write(root / "f3.txt", "content 3, retrained")
        second = run()
        assert (1, 4) == (second.ok, second.already_done)
        assert ["f0.txt", "f1.txt", "f2.txt", "f3.txt", "f4.txt"] == sorted(seen[:5])
        assert ["f3.txt"] == seen[5:]

    def test_bad_directory_source_arguments(self, tmp_path: Path) -> None:
        """A missing directory or a zero batch size is refused by name."""
        with pytest.raises(ValueError, match="'root'"):
            ss.DirectorySource(tmp_path / "missing")
        with pytest.raises(ValueError, match="'batch_size'"):
            ss.DirectorySource(tmp_path, batch_size=0)
