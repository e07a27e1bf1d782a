"""A SQLite results table the pipeline tests write into and read back."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def results_db(path: Path) -> Path:
    """A new SQLite file with an empty ``results (key, value)`` table."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE results (key TEXT PRIMARY KEY, value INTEGER)")
    conn.commit()
    conn.close()
    return path


def rows(path: Path) -> dict[str, int]:
    """The results table as ``{key: value}``."""
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT key, value FROM results").fetchall())
    finally:
        conn.close()


def to_row(n: int) -> dict[str, Any]:
    """The row for item ``n``: its key and its square."""
    return {"key": str(n), "value": n * n}
