"""A pipeline run to be killed with SIGKILL by tests: N items, a SQLite sink, a checkpoint.

Usage: python kill_me.py DIR N. The sink upserts into ``results`` and appends every write to
``writes`` in the same transaction, so a test can tell lost items from rewritten ones.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import Any

import slipstream as ss


def main(folder: Path, n: int) -> None:
    db = folder / "results.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value INTEGER)")
    conn.execute("CREATE TABLE IF NOT EXISTS writes (key TEXT)")
    conn.commit()
    conn.close()

    def flush(rows: list[dict[str, Any]]) -> None:
        c = sqlite3.connect(db, timeout=30)
        try:
            with c:
                c.executemany(
                    "INSERT INTO results VALUES (:key, :value) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    rows,
                )
                c.executemany("INSERT INTO writes VALUES (:key)", rows)
        finally:
            c.close()

    async def work(i: int) -> dict[str, Any]:
        await asyncio.sleep(0.005)
        return {"key": str(i), "value": i * 3}

    pipeline = ss.Pipeline(
        range(n),
        [ss.Stage(work, concurrency=4)],
        flush,
        checkpoint=ss.Checkpoint(folder / "checkpoint.sqlite"),
        run_id="killed",
        batch_size=25,
        max_wait_s=0.05,
    )
    report = asyncio.run(pipeline.run(handle_signals=True))
    print("STATE", report.state, report.ok, report.already_done, flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
