"""prefetch: sync lookups by key in chunks, one IN query per chunk."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss

from .test_loader import make_people_db


def test_prefetch_on_sqlite(tmp_path: Path) -> None:
    """prefetch turns 250 ids (with repeats) into ceil(200 / 64) IN queries."""
    path = tmp_path / "assets.sqlite"
    make_people_db(path, 300)
    conn = sqlite3.connect(path)
    queries: list[str] = []
    conn.set_trace_callback(queries.append)

    def fetch(ids: list[int]) -> list[tuple[Any, ...]]:
        marks = ",".join("?" * len(ids))
        return conn.execute(f"SELECT id, name FROM person WHERE id IN ({marks})", ids).fetchall()

    ids = list(range(200)) + list(range(50))
    found = ss.prefetch(ids, fetch, batch_size=64, key=lambda row: row[0])
    assert 200 == len(found)
    assert (7, "P7") == found[7]
    assert math.ceil(200 / 64) == len(queries)
    with pytest.raises(TypeError, match="key="):
        ss.prefetch([1], fetch)
    with pytest.raises(ValueError, match="'batch_size'"):
        ss.prefetch([1], fetch, batch_size=0)
