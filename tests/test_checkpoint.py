"""ss.Checkpoint: durable item states in SQLite or PostgreSQL; damaged files are refused."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss

Run = Callable[[Coroutine[Any, Any, Any]], Any]
WORKER = Path(__file__).with_name("workers") / "kill_me.py"


async def roundtrip(cp: ss.Checkpoint, run_id: str) -> tuple[Any, ...]:
    async with cp:
        await cp.start_run(run_id, {"who": "test"})
        await cp.mark_done(run_id, ["a", "b"])
        await cp.mark(run_id, "failed", [("c", "llm", "ValueError: bad", "raw")])
        await cp.mark(run_id, "skipped", [("d", "fetch", "missing", "")])
        await cp.mark_done(run_id, ["c"])  # a retried failure that now succeeded
        await cp.set_state(run_id, "paused")
        status = await cp.status(run_id)
        done = await cp.keys(run_id, "done")
        failures = await cp.failures(run_id)
        unknown = await cp.status("never-ran")
        runs = await cp.runs()
    return status, done, failures, unknown, runs


def check_roundtrip(result: tuple[Any, ...], run_id: str) -> None:
    status, done, failures, unknown, runs = result
    assert {"a", "b", "c"} == done
    assert [] == failures
    assert (3, 0, 1, "paused") == (status.done, status.failed, status.skipped, status.state)
    assert {"who": "test"} == status.info
    assert unknown is None
    assert run_id in runs


def test_sqlite_checkpoint_records_states(tmp_path: Path, arun: Run) -> None:
    check_roundtrip(arun(roundtrip(ss.Checkpoint(tmp_path / "c.sqlite"), "r")), "r")


def test_postgres_checkpoint_records_states(postgres_url: str, arun: Run) -> None:
    run_id = f"test-{uuid.uuid4().hex}"
    check_roundtrip(arun(roundtrip(ss.Checkpoint(postgres_url), run_id)), run_id)


def test_a_damaged_checkpoint_is_refused_not_reset(tmp_path: Path, arun: Run) -> None:
    path = tmp_path / "c.sqlite"
    arun(roundtrip(ss.Checkpoint(path), "r"))
    size = path.stat().st_size
    with path.open("r+b") as f:  # scribble over the header
        f.write(b"this is not sqlite at all" * 4)
    with pytest.raises(ss.CheckpointError, match="not reset"):
        arun(ss.Checkpoint(path).open())
    assert size == path.stat().st_size
    assert path.read_bytes().startswith(b"this is not sqlite")


def test_a_foreign_sqlite_file_is_refused(tmp_path: Path, arun: Run) -> None:
    path = tmp_path / "app.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(ss.CheckpointError, match="not a slipstream checkpoint"):
        arun(ss.Checkpoint(path).open())


def test_an_unreachable_checkpoint_database_is_a_clear_error(arun: Run) -> None:
    with pytest.raises(ss.CheckpointError, match="cannot reach"):
        arun(ss.Checkpoint("postgresql://postgres@127.0.0.1:1/test").open())


def test_bad_checkpoint_arguments(tmp_path: Path, arun: Run) -> None:
    with pytest.raises(TypeError, match="'target'"):
        ss.Checkpoint(3)  # type: ignore[arg-type]

    async def bad_status() -> None:
        async with ss.Checkpoint(tmp_path / "c.sqlite") as cp:
            await cp.mark("r", "maybe", [])

    with pytest.raises(ValueError, match="'status'"):
        arun(bad_status())


def written(folder: Path) -> int:
    try:
        conn = sqlite3.connect(folder / "results.sqlite", timeout=1)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


@pytest.mark.realtime
def test_sigkill_at_random_moments_loses_nothing_and_keeps_one_row_each(tmp_path: Path) -> None:
    n = 600
    rng = random.Random(7)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    kills = 0
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(tmp_path), str(n)],
            stdout=subprocess.PIPE,
            env=env,
        )
        # kill once the run has written a random amount more (a moment inside the run)
        target = rng.randint(50, 150) * (round_ + 1)
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            if written(tmp_path) >= target:
                time.sleep(rng.uniform(0, 0.03))
                break
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()
    final = subprocess.run(
        [sys.executable, str(WORKER), str(tmp_path), str(n)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert "STATE finished" in final.stdout
    assert 3 == kills
    conn = sqlite3.connect(tmp_path / "results.sqlite")
    results = dict(conn.execute("SELECT key, value FROM results").fetchall())
    writes = conn.execute("SELECT COUNT(*) FROM writes").fetchone()[0]
    conn.close()
    assert {str(i): i * 3 for i in range(n)} == results  # none lost, one row each
    # rewrites happen only for items committed but not yet marked when the kill came
    assert n <= writes <= n + kills * 25 * 2


@pytest.mark.realtime
def test_sigterm_pauses_cleanly_and_the_next_run_finishes(tmp_path: Path) -> None:
    n = 600
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    args = [sys.executable, str(WORKER), str(tmp_path), str(n)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 20
    while written(tmp_path) < 100 and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert 0 == proc.returncode
    state, ok, _ = out.split()[1:4]
    assert "paused" == state
    assert int(ok) == written(tmp_path)  # what it took, it committed before returning
    assert 100 <= int(ok) < n
    final = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, check=True)
    assert f"STATE finished {n - int(ok)} {ok}" == final.stdout.strip()
    assert n == written(tmp_path)
