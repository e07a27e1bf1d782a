"""ss.Checkpoint: durable item states in SQLite or PostgreSQL; damaged files are refused."""

from __future__ import annotations

import asyncio
import json
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
WORKER = (Path(__file__).parents[1] / "workers") / "kill_me.py"


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


class TestStores:
    def test_sqlite_checkpoint_records_states(self, tmp_path: Path, arun: Run) -> None:
        """A SQLite file keeps a run's done, failed and skipped items (a retried failure that
        succeeds becomes done), its state and info, and knows no run it never saw."""
        check_roundtrip(arun(roundtrip(ss.Checkpoint(tmp_path / "c.sqlite"), "r")), "r")

    def test_postgres_checkpoint_records_states(self, postgres_url: str, arun: Run) -> None:
        """A PostgreSQL database keeps exactly what a SQLite file keeps, for the same calls."""
        run_id = f"test-{uuid.uuid4().hex}"
        check_roundtrip(arun(roundtrip(ss.Checkpoint(postgres_url), run_id)), run_id)


class TestStoreProtocol:
    def test_each_store_implements_the_protocol(self) -> None:
        """The SQLite and PostgreSQL stores define every CheckpointStore method with the
        protocol's parameters, so the Checkpoint in front of either needs no backend case."""
        import inspect

        from slipstream._impl.pipeline.checkpoint import CheckpointStore
        from slipstream._impl.pipeline.checkpoint.postgres import PostgresStore
        from slipstream._impl.pipeline.checkpoint.sqlite import SqliteStore

        wanted = {
            name: list(inspect.signature(fn).parameters)
            for name, fn in vars(CheckpointStore).items()
            if inspect.isfunction(fn) and not name.startswith("_")
        }
        assert {"open", "close", "mark", "run", "heartbeat"} <= set(wanted)
        for store in (SqliteStore, PostgresStore):
            found = {
                name: list(inspect.signature(getattr(store, name)).parameters) for name in wanted
            }
            assert wanted == found, store.__name__


class TestRefusals:
    def test_a_damaged_checkpoint_is_refused_not_reset(self, tmp_path: Path, arun: Run) -> None:
        """A checkpoint file with a scribbled header is refused and left byte for byte as it
        was."""
        path = tmp_path / "c.sqlite"
        arun(roundtrip(ss.Checkpoint(path), "r"))
        size = path.stat().st_size
        with path.open("r+b") as f:  # scribble over the header
            f.write(b"this is not sqlite at all" * 4)
        with pytest.raises(ss.CheckpointError, match="not reset"):
            arun(ss.Checkpoint(path).open())
        assert size == path.stat().st_size
        assert path.read_bytes().startswith(b"this is not sqlite")

    def test_a_foreign_sqlite_file_is_refused(self, tmp_path: Path, arun: Run) -> None:
        """A SQLite file holding some application's tables is not taken for a checkpoint."""
        path = tmp_path / "app.sqlite"
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE users (id INTEGER)")
        conn.commit()
        conn.close()
        with pytest.raises(ss.CheckpointError, match="not a slipstream checkpoint"):
            arun(ss.Checkpoint(path).open())

    def test_an_unreachable_checkpoint_database_is_a_clear_error(self, arun: Run) -> None:
        """A PostgreSQL URL nothing listens on fails to open with a CheckpointError saying so."""
        with pytest.raises(ss.CheckpointError, match="cannot reach"):
            arun(ss.Checkpoint("postgresql://postgres@127.0.0.1:1/test").open())

    def test_bad_checkpoint_arguments(self, tmp_path: Path, arun: Run) -> None:
        """A target that is neither a path nor a URL is a TypeError, and an item status that
        is not done, failed or skipped a ValueError naming the argument."""
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
class TestCrashes:
    def test_sigkill_at_random_moments_loses_nothing_and_keeps_one_row_each(
        self, tmp_path: Path
    ) -> None:
        """A run SIGKILLed at three random moments and resumed commits every item exactly
        once in the sink's table, rewriting only the few committed but not yet marked."""
        n = 600
        rng = random.Random(7)
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2] / "src"))
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

    def test_sigterm_pauses_cleanly_and_the_next_run_finishes(self, tmp_path: Path) -> None:
        """SIGTERM pauses a run after committing what it took, and the next run does exactly
        the rest and finishes."""
        n = 600
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2] / "src"))
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
        final = subprocess.run(
            args, capture_output=True, text=True, env=env, timeout=60, check=True
        )
        assert f"STATE finished {n - int(ok)} {ok}" == final.stdout.strip()
        assert n == written(tmp_path)


HOLD = (Path(__file__).parents[1] / "workers") / "hold_run.py"
SRC = str(Path(__file__).parents[2] / "src")


async def status_of(target: str, run_id: str) -> Any:
    async with ss.Checkpoint(target) as cp:
        return await cp.status(run_id)


@pytest.mark.realtime
class TestInterruptedRuns:
    @pytest.mark.parametrize("store", ["sqlite", "postgresql"])
    def test_a_killed_run_reads_interrupted_and_a_live_one_running(
        self, store: str, tmp_path: Path, request: pytest.FixtureRequest, arun: Run
    ) -> None:
        """A run in another process reads 'running' while it lives and 'interrupted' once it
        is SIGKILLed, in status() and in 'slipstream status' (it read 'running' forever)."""
        if store == "sqlite":
            target = str(tmp_path / "c.sqlite")
        else:
            target = request.getfixturevalue("postgres_url")
        run_id = f"hold-{uuid.uuid4().hex}"
        env = dict(os.environ, PYTHONPATH=SRC, HOLD_CHECKPOINT=target, HOLD_RUN_ID=run_id)
        proc = subprocess.Popen(
            [sys.executable, str(HOLD)], stdout=subprocess.PIPE, text=True, env=env
        )
        try:
            assert proc.stdout is not None
            assert "READY" == proc.stdout.readline().strip()  # 10 items committed, then held
            live = arun(status_of(target, run_id))
            assert ("running", proc.pid, 10) == (live.state, live.pid, live.done)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            dead = arun(status_of(target, run_id))
            assert ("interrupted", 10) == (dead.state, dead.done)
            if store == "sqlite":
                cli = subprocess.run(
                    [sys.executable, "-m", "slipstream", "status", f"{HOLD}:pipeline"],
                    capture_output=True,
                    text=True,
                    env=dict(env, PYTHONPATH=SRC),
                    cwd=tmp_path,
                    timeout=60,
                )
                assert 0 == cli.returncode, cli.stderr
                assert f"run {run_id}: interrupted (pid {proc.pid} on " in cli.stderr
                assert "interrupted" == json.loads(cli.stdout.splitlines()[-1])["state"]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()


class TestOwnerOfARun:
    def owned(self, path: Path, arun: Run, *, taken_over: bool = False, **owner: Any) -> str:
        """The state status() reports for a 'running' run with the given owner columns
        (``updated`` defaults to the heartbeat: no one wrote the run since its last beat)."""

        async def main() -> str:
            async with ss.Checkpoint(path, heartbeat_s=10) as cp:
                await cp.start_run("r")
            conn = sqlite3.connect(path)
            with conn:
                if owner:
                    sets = ", ".join(f"{k} = ?" for k in owner)
                    conn.execute(f"UPDATE slipstream_runs SET {sets}", tuple(owner.values()))
                later = 10 if taken_over else 0  # another writer updated the run since
                conn.execute("UPDATE slipstream_runs SET updated = heartbeat + ?", (later,))
            conn.close()
            async with ss.Checkpoint(path, heartbeat_s=10) as cp:
                status = await cp.status("r")
            assert status is not None
            return str(status.state)

        return str(arun(main()))

    def test_this_process_reads_running(self, tmp_path: Path, arun: Run) -> None:
        """The run's own process is alive: running."""
        assert "running" == self.owned(tmp_path / "c.sqlite", arun)

    def test_a_reused_pid_is_not_the_run(self, tmp_path: Path, arun: Run) -> None:
        """The pid is alive but that process started at another time (reused): interrupted."""
        process = _machine_token() + "/1"
        assert "interrupted" == self.owned(tmp_path / "c.sqlite", arun, process=process)

    def test_another_machine_is_judged_by_its_heartbeat(self, tmp_path: Path, arun: Run) -> None:
        """From another machine: a heartbeat older than 4 x heartbeat_s is interrupted, a
        fresh one running; a run taken over since by a writer keeping no heartbeat (the
        previous version, on PostgreSQL) cannot be judged and stays running."""
        now = time.time()
        elsewhere: dict[str, Any] = {"host": "elsewhere", "pid": 4242, "process": "x:y/99"}
        stale = self.owned(tmp_path / "a.sqlite", arun, **elsewhere, heartbeat=now - 41)
        fresh = self.owned(tmp_path / "b.sqlite", arun, **elsewhere, heartbeat=now - 1)
        taken = self.owned(
            tmp_path / "c.sqlite", arun, taken_over=True, **elsewhere, heartbeat=now - 41
        )
        assert ("interrupted", "running", "running") == (stale, fresh, taken)

    @pytest.mark.realtime
    def test_the_heartbeat_is_renewed_while_the_run_lasts(self, tmp_path: Path, arun: Run) -> None:
        """A heartbeat thread renews the beat, and stops with the run's final state."""

        async def beat_of(cp: ss.Checkpoint) -> float | None:
            status = await cp.status("r")
            assert status is not None
            return status.heartbeat

        async def main() -> tuple[float | None, float | None, float | None, float | None]:
            async with ss.Checkpoint(tmp_path / "c.sqlite", heartbeat_s=0.02) as cp:
                await cp.start_run("r")
                first = renewed = await beat_of(cp)
                for _ in range(200):  # up to 2 s for the first renewal
                    if renewed != first:
                        break
                    await asyncio.sleep(0.01)
                    renewed = await beat_of(cp)
                await cp.set_state("r", "finished")
                after = await beat_of(cp)
                await asyncio.sleep(0.1)  # five intervals
                later = await beat_of(cp)
            return first, renewed, after, later

        first, renewed, after, later = arun(main())
        assert first is not None
        assert renewed is not None
        assert renewed > first
        assert after == later  # no beat after the run ended


def _machine_token() -> str:
    from slipstream._impl.pipeline.checkpoint.states import _machine

    machine = _machine()
    if machine is None:
        pytest.skip("no /proc: pids are not checked on this platform")
    return machine


OLD_SCHEMA = """
CREATE TABLE slipstream_meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE slipstream_runs (
    run_id TEXT PRIMARY KEY, state TEXT, created REAL, updated REAL, info TEXT);
CREATE TABLE slipstream_items (
    run_id TEXT, key TEXT, status TEXT, stage TEXT, error TEXT, detail TEXT, updated REAL,
    PRIMARY KEY (run_id, key));
INSERT INTO slipstream_meta VALUES ('format', '1');
INSERT INTO slipstream_runs VALUES ('old', 'paused', 1.0, 2.0, '{"pipeline": "p"}');
INSERT INTO slipstream_runs VALUES ('was-running', 'running', 1.0, 2.0, '{}');
INSERT INTO slipstream_items VALUES ('old', '0', 'done', '', '', '', 2.0);
INSERT INTO slipstream_items VALUES ('old', '1', 'done', '', '', '', 2.0);
INSERT INTO slipstream_items VALUES ('old', '2', 'failed', 'llm', 'ValueError: bad', 'raw', 2.0);
"""


class TestFormats:
    def test_a_format_1_file_is_migrated_in_place_and_resumes(
        self, tmp_path: Path, arun: Run
    ) -> None:
        """A checkpoint written by the previous version opens: its runs and items are kept,
        the owner columns are added, and a pipeline resumes from it."""
        path = tmp_path / "old.sqlite"
        conn = sqlite3.connect(path)
        conn.executescript(OLD_SCHEMA)
        conn.close()

        async def main() -> tuple[Any, Any, list[Any], ss.RunReport]:
            cp = ss.Checkpoint(path)
            async with cp:
                old = await cp.status("old")
                running = await cp.status("was-running")
                failures = await cp.failures("old")
            report = await ss.Pipeline(range(5), [ss.Stage(abs)], checkpoint=cp, run_id="old").run()
            await cp.aclose()
            return old, running, failures, report

        old, running, failures, report = arun(main())
        assert ("paused", 2, 1, {"pipeline": "p"}) == (old.state, old.done, old.failed, old.info)
        assert (None, None) == (old.pid, old.heartbeat)
        assert "running" == running.state  # no owner recorded: nothing to judge it by
        assert [("2", "llm", "ValueError: bad", "raw")] == [
            (f.key, f.stage, f.error, f.detail) for f in failures
        ]
        assert (2, 3) == (report.ok, report.already_done)  # 0, 1 done and 2 failed before
        conn = sqlite3.connect(path)
        fmt = conn.execute("SELECT value FROM slipstream_meta WHERE key = 'format'").fetchone()
        columns = {r[1] for r in conn.execute("PRAGMA table_info(slipstream_runs)")}
        conn.close()
        assert ("2",) == fmt
        assert {"host", "pid", "process", "heartbeat"} <= columns

    def test_an_unknown_format_is_refused_unchanged(self, tmp_path: Path, arun: Run) -> None:
        """A file of a format this version does not know is refused, byte for byte intact."""
        path = tmp_path / "future.sqlite"
        conn = sqlite3.connect(path)
        conn.executescript(OLD_SCHEMA.replace("'format', '1'", "'format', '9'"))
        conn.close()
        before = path.read_bytes()
        with pytest.raises(ss.CheckpointError, match="format '9'"):
            arun(ss.Checkpoint(path).open())
        assert before == path.read_bytes()

    def test_a_postgres_table_of_the_previous_version_gets_the_owner_columns(
        self, postgres_url: str, arun: Run
    ) -> None:
        """A slipstream_runs table without the owner columns gets them; its rows stay."""
        import asyncpg

        schema = f"old_{uuid.uuid4().hex[:10]}"

        async def main() -> tuple[Any, Any]:
            conn = await asyncpg.connect(postgres_url)
            try:
                await conn.execute(f"CREATE SCHEMA {schema}")
                await conn.execute(
                    f"CREATE TABLE {schema}.slipstream_runs (run_id TEXT PRIMARY KEY, state TEXT,"
                    " created DOUBLE PRECISION, updated DOUBLE PRECISION, info TEXT)"
                )
                await conn.execute(
                    f"INSERT INTO {schema}.slipstream_runs VALUES ('old', 'paused', 1, 2, '{{}}')"
                )
                url = f"{postgres_url}?options=-csearch_path%3D{schema}"
                async with ss.Checkpoint(url) as cp:
                    old = await cp.status("old")
                    await cp.start_run("new")
                    new = await cp.status("new")
                return old, new
            finally:
                await conn.execute(f"DROP SCHEMA {schema} CASCADE")
                await conn.close()

        old, new = arun(main())
        assert ("paused", None) == (old.state, old.pid)
        assert ("running", os.getpid()) == (new.state, new.pid)
