"""Item identity: the engine carries every item's key and source item beside its value, so a
cached output shared by several items is written under each item's own id."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss
from slipstream._impl.pipeline.stage import Item, current_item

Run = Callable[[Coroutine[Any, Any, Any]], Any]

N_DOCS, N_TEXTS = 200, 160


def documents() -> list[tuple[str, str]]:
    """200 documents, 160 distinct texts: documents 160..199 repeat the texts of 0..39."""
    return [(f"doc-{i:03d}", f"text number {i % N_TEXTS}") for i in range(N_DOCS)]


def label_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def labels_table(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE labels (doc_id TEXT PRIMARY KEY, label TEXT)")
    conn.commit()
    conn.close()
    return path


def stored(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT doc_id, label FROM labels").fetchall())
    finally:
        conn.close()


class TestCachedStagesKeepEveryIdentity:
    def test_duplicates_by_cache_key_are_stored_under_their_own_ids(
        self, tmp_path: Path, vrun: Run
    ) -> None:
        """200 documents with 160 distinct texts through a stage cached by text: 160 calls,
        200 rows in SQLite, each under its own document id with its text's label."""
        db = labels_table(tmp_path / "labels.sqlite")
        calls: list[str] = []

        async def classify(doc: tuple[str, str]) -> str:
            calls.append(doc[1])
            await asyncio.sleep(0.01)
            return label_of(doc[1])  # depends on the text only: what cache_key captures

        pipeline = ss.Pipeline(
            documents(),
            [ss.Stage(classify, cache=ss.Cache(), cache_key=lambda doc: doc[1], concurrency=8)],
            ss.sqlite_flush(db, "labels", ["doc_id", "label"], conflict=["doc_id"]),
            key=lambda doc: doc[0],
            row=lambda item, label: (item.key, label),
            checkpoint=ss.Checkpoint(tmp_path / "c.sqlite"),
            batch_size=50,
        )
        report = vrun(pipeline.run())
        assert (N_DOCS, 0) == (report.ok, report.failed)
        assert N_TEXTS == len(calls)  # the cache did its job
        assert {doc_id: label_of(text) for doc_id, text in documents()} == stored(db)

    def test_duplicates_by_cache_key_reach_postgres_under_their_own_ids(
        self, postgres_url: str, arun: Run
    ) -> None:
        """The reported case: asyncpg_flush into PostgreSQL holds 200 rows, not 160 (a real
        loop: asyncpg's connect timeout would fire at once on a virtual clock)."""
        import asyncpg

        table = f"labels_{uuid.uuid4().hex[:12]}"

        async def main() -> tuple[ss.RunReport, dict[str, str]]:
            pool = await asyncpg.create_pool(postgres_url, min_size=1, max_size=2)
            try:
                await pool.execute(f"CREATE TABLE {table} (doc_id TEXT PRIMARY KEY, label TEXT)")

                async def classify(doc: tuple[str, str]) -> str:
                    await asyncio.sleep(0)
                    return label_of(doc[1])

                pipeline = ss.Pipeline(
                    documents(),
                    [ss.Stage(classify, cache=ss.Cache(), cache_key=lambda doc: doc[1])],
                    ss.asyncpg_flush(pool, table, ["doc_id", "label"], conflict=["doc_id"]),
                    key=lambda doc: doc[0],
                    row=lambda item, label: {"doc_id": item.key, "label": label},
                    batch_size=64,
                )
                report = await pipeline.run()
                rows = dict(await pool.fetch(f"SELECT doc_id, label FROM {table}"))
                return report, rows
            finally:
                await pool.execute(f"DROP TABLE IF EXISTS {table}")
                await pool.close()

        report, rows = arun(main())
        assert N_DOCS == report.ok
        assert {doc_id: label_of(text) for doc_id, text in documents()} == rows

    def test_current_item_in_a_cached_stage_is_refused_with_a_hint(
        self, tmp_path: Path, vrun: Run
    ) -> None:
        """Reading the identity inside a cached stage fails each item with a clear error
        pointing at row=; no row is written under another item's id."""
        db = labels_table(tmp_path / "labels.sqlite")

        async def classify(doc: tuple[str, str]) -> tuple[str, str]:
            return (current_item().key, label_of(doc[1]))

        report = vrun(
            ss.Pipeline(
                documents()[:10],
                [ss.Stage(classify, cache=ss.Cache(), cache_key=lambda doc: doc[1])],
                ss.sqlite_flush(db, "labels", ["doc_id", "label"]),
                key=lambda doc: doc[0],
            ).run()
        )
        assert (0, 10) == (report.ok, report.failed)
        error = report.failures[0].error
        assert error.startswith("RuntimeError: current_item() in stage 'classify'")
        assert "HINT: build the sink's row from the identity with Pipeline(row=" in error
        assert {} == stored(db)


class TestCurrentItem:
    def test_every_kind_of_stage_sees_its_own_item(self, vrun: Run) -> None:
        """An async stage, a sync stage (run in a thread) and the stage after a cached one
        all see the identity of the item they process: its key and its source item."""
        seen: dict[str, list[tuple[str, Any]]] = {"async": [], "sync": [], "after": []}

        async def first(n: int) -> int:
            item = current_item()
            seen["async"].append((item.key, item.source))
            await asyncio.sleep(0.001 * (n % 3))  # out of order
            return n % 4

        def second(n: int) -> int:  # sync: offloaded, the context copied into the thread
            item = current_item()
            seen["sync"].append((item.key, item.source))
            return n

        async def cached(n: int) -> int:
            return n * 100

        async def after(n: int) -> int:
            item = current_item()
            seen["after"].append((item.key, item.source))
            return n

        out: list[Any] = []

        async def sink(rows: list[Any]) -> None:
            out.extend(rows)

        report = vrun(
            ss.Pipeline(
                [f"s{i}" for i in range(20)],
                [
                    ss.Stage(lambda s: int(s[1:]), name="parse"),
                    ss.Stage(first, concurrency=5),
                    ss.Stage(second, concurrency=3),
                    ss.Stage(cached, cache=ss.Cache()),
                    ss.Stage(after),
                ],
                sink,
                row=lambda item, value: (item.key, item.source, value),
            ).run()
        )
        expected = sorted((f"s{i}", f"s{i}") for i in range(20))
        assert 20 == report.ok
        assert expected == sorted(seen["async"])
        assert expected == sorted(seen["sync"])
        assert expected == sorted(seen["after"])
        assert sorted((f"s{i}", f"s{i}", (i % 4) * 100) for i in range(20)) == sorted(out)

    def test_outside_a_stage_it_raises(self) -> None:
        """Called outside a stage call, current_item() says so instead of returning None."""
        with pytest.raises(RuntimeError, match="outside a pipeline stage call"):
            current_item()

    def test_item_is_a_frozen_value(self) -> None:
        """Item compares by value and cannot be changed."""
        item = Item(key="k", source={"id": 1})
        assert Item(key="k", source={"id": 1}) == item
        with pytest.raises(AttributeError):
            item.key = "other"  # type: ignore[misc]


class TestRowBuilder:
    def test_a_failing_row_builder_fails_that_item_at_row(self, vrun: Run) -> None:
        """row= raising fails its item alone, recorded at stage 'row'; an async row= works."""
        out: list[Any] = []

        async def sink(rows: list[Any]) -> None:
            out.extend(rows)

        async def row(item: Item, value: int) -> tuple[str, int]:
            if value == 3:
                raise ValueError("no row for 3")
            return (item.key, value)

        report = vrun(ss.Pipeline(range(6), [ss.Stage(abs)], sink, row=row).run())
        assert (5, 1) == (report.ok, report.failed)
        assert [("3", "row", "ValueError: no row for 3")] == [
            (f.key, f.stage, f.error) for f in report.failures
        ]
        assert [(str(i), i) for i in range(6) if i != 3] == sorted(out)

    def test_without_row_the_sink_gets_the_last_value(self, vrun: Run) -> None:
        """The default row is the last stage's value, as before."""
        out: list[Any] = []

        async def sink(rows: list[Any]) -> None:
            out.extend(rows)

        vrun(ss.Pipeline(range(4), [ss.Stage(lambda n: n * 2, name="double")], sink).run())
        assert [0, 2, 4, 6] == sorted(out)
