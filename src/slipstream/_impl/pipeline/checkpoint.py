"""``ss.Checkpoint``: what each item of a pipeline run became, durably (seed 004).

Seed 004's pipeline had to pause and resume, and its checkpoint call pointed at a method that
did not exist. A checkpoint here is a table of ``(run_id, key) -> status`` where status is
``done`` (the sink committed the item's result), ``failed`` (with the stage, the error and the
raw detail) or ``skipped`` (with the reason). The pipeline writes ``done`` only after the sink's
transaction committed, so a crash at any moment leaves at worst items that are committed but
not yet marked; a resumed run processes them again and the sink's upsert by item key keeps one
row each.

Stores: a SQLite file (default; WAL, one connection on one worker thread, so the loop never
waits on a file lock) or a PostgreSQL table (``postgresql://`` URL, asyncpg). A file that is
not a checkpoint, or is damaged, is refused with ``CheckpointError``; it is never reset. A file
of the previous format (1) is migrated in place, in one transaction (columns added, nothing
rewritten); a file of a format this version does not know is refused.

Who runs a run: ``start_run`` records the host, the pid (with the process's start time, so a
reused pid is not mistaken for the run) and a heartbeat, renewed every ``heartbeat_s`` by a
thread while the run lasts. ``status`` reports a run recorded as ``running`` as
``interrupted`` when its process is gone (same machine: the pid is checked) or, from another
machine, when its heartbeat is older than ``4 * heartbeat_s``.

Failures are stored as ``describe_error`` writes them: the exception's type and message, its
notes (``exc.__notes__``: why a retry gave up, a timeout) and its chain of causes, so the
checkpoint, ``RunReport.failures`` and ``slipstream status`` show the same reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from ..core.checks import check_seconds
from ..core.errors import CheckpointError

__all__ = ["Checkpoint", "FailedItem", "RunStatus", "describe_error", "format_failure"]

logger = logging.getLogger("slipstream.checkpoint")

_FORMAT = "2"  # 2: slipstream_runs has host, pid, process, heartbeat (1 is migrated on open)
_MIGRATES = ("1",)
_STATUSES = ("done", "failed", "skipped")
_OWNER_COLUMNS = (("host", "TEXT"), ("pid", "INTEGER"), ("process", "TEXT"), ("heartbeat", "REAL"))
_MAX_CHAIN = 8  # causes shown per failure


# A run's state: running (its process is alive, or was when last seen), paused (stopped by
# pause() or a signal, resumable), finished, or interrupted (recorded as running, but the
# process is gone: killed, crashed).
RunState = Literal["running", "paused", "finished", "interrupted"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStatus:
    """Counts of one run's items by status, and the run's state.

    ``state`` is ``running``, ``paused``, ``finished`` or ``interrupted``: a run recorded as
    running whose process is gone (killed, crashed) reads ``interrupted``. ``host``, ``pid``
    and ``heartbeat`` (epoch seconds) say which process ran it last (None for a run recorded by
    a version that did not keep them).
    """

    run_id: str
    state: RunState
    done: int
    failed: int
    skipped: int
    created: float
    updated: float
    info: dict[str, Any]
    host: str | None = None
    pid: int | None = None
    heartbeat: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FailedItem:
    """A failed item as the checkpoint keeps it; ``error`` is ``describe_error``'s text."""

    key: str
    stage: str
    error: str
    detail: str

    def __str__(self) -> str:
        return format_failure(self.key, self.stage, self.error)


def _one_error(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def describe_error(exc: BaseException) -> str:
    """Why an item failed, in full: ``Type: message``, then one line per note
    (``exc.__notes__``) and per cause (``__cause__``, else ``__context__`` unless suppressed
    with ``raise ... from None``), each with its own notes. The one format of a failure in
    ``RunReport.failures``, the checkpoint and ``slipstream status``."""
    lines: list[str] = []
    seen: set[int] = set()
    previous = ""
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(current))
        text = _one_error(current)
        if not lines:
            lines.append(text)
        elif text != previous:  # a wrapper re-raising the same error says nothing new
            lines.append(f"  caused by: {text}")
        previous = text
        notes: list[str] = []
        for note in getattr(current, "__notes__", None) or ():
            if isinstance(note, str) and note not in notes:  # a reused exception: noted again
                notes.append(note)
        lines.extend(f"  note: {note}" for note in notes)
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    if current is not None and id(current) not in seen:
        lines.append("  caused by: ...")
    return "\n".join(lines)


def error_detail(exc: BaseException) -> str:
    """The raw ``detail`` of the exception, or of the first cause that has one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        detail = getattr(current, "detail", None)
        if detail is not None and str(detail):
            return str(detail)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return ""


def format_failure(key: str, stage: str, error: str) -> str:
    """One failure for people to read: ``failed KEY at STAGE: error``, with the error's
    further lines (notes, causes: ``describe_error`` indents them) kept under it."""
    first, _, rest = error.partition("\n")
    text = f"failed {key} at {stage}: {first}"
    for line in rest.split("\n") if rest else ():
        text += f"\n{line}" if line.startswith(" ") else f"\n  {line}"
    return text


# -- who runs a run ----------------------------------------------------------------------------


def _read(path: str) -> str | None:
    try:
        with open(path) as f:  # noqa: SLP401 - only /proc files: kernel memory, no disk
            return f.read().strip()
    except OSError:
        return None


def _machine() -> str | None:
    """This kernel boot and pid namespace: where a pid means the same process (Linux)."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}:{namespace}" if boot else None


def _process_start(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), or None if it is gone or a zombie;
    "" where there is no /proc (then only a signal probe says it is alive)."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        if os.path.isdir("/proc/self"):
            return None
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return None
        except OSError:
            return ""
        return ""
    fields = stat.rpartition(")")[2].split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return fields[19] if len(fields) > 19 else ""


def _this_process() -> str | None:
    machine = _machine()
    start = _process_start(os.getpid())
    return f"{machine}/{start}" if machine and start else None


def judge_state(
    state: str,
    *,
    pid: int | None,
    process: str | None,
    heartbeat: float | None,
    updated: float,
    now: float,
    stale_s: float,
) -> RunState:
    """``state`` as recorded, or ``interrupted`` for a ``running`` run whose process is gone:
    on this machine (same boot and pid namespace) when the pid is not that process any more;
    from elsewhere when its heartbeat is older than ``stale_s``."""
    recorded = cast(RunState, state)  # as the checkpoint stored it (one of RunState)
    if state != "running" or pid is None or heartbeat is None:
        return recorded  # not running, or recorded by a version that kept no owner
    if updated > heartbeat:
        return recorded  # a writer that keeps no heartbeat took the run since: cannot tell
    machine, _, start = (process or "").rpartition("/")
    if machine and machine == _machine():
        return recorded if _process_start(pid) == start else "interrupted"
    return "interrupted" if now - heartbeat > stale_s else recorded


class _Heartbeat:
    """A thread renewing a run's heartbeat every ``interval_s``, in real time (the event loop's
    clock may be virtual, and a blocked loop is still a live process)."""

    def __init__(self, beat: Any, interval_s: float) -> None:
        self._beat = beat
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slipstream-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                if self._beat() is False:
                    return  # the store closed, or the run's event loop did: nothing to renew
            except Exception as exc:  # unreachable for now: try again next time
                logger.debug("heartbeat not written: %r", exc)

    def stop(self) -> None:
        """Stop beating (does not wait: a beat in progress may need the event loop)."""
        self._stop.set()


class _SqliteStore:
    """All statements on one thread with one connection: sqlite3 objects are thread-bound."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="slipstream-checkpoint")
        self._conn: sqlite3.Connection | None = None

    async def call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # -- the sync side, on the store's thread ----------------------------------------------

    def open(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if tables and "slipstream_meta" not in tables:
                raise CheckpointError(
                    f"{self.path} is a SQLite file but not a slipstream checkpoint (it has "
                    f"tables {sorted(tables)}); pass another path"
                )
            if "slipstream_meta" in tables:
                (check,) = conn.execute("PRAGMA quick_check").fetchone()
                if check != "ok":
                    raise CheckpointError(f"{self.path} is damaged ({check}); it was not reset")
                found = self._format(conn)
                if found not in _MIGRATES and found != _FORMAT:
                    raise CheckpointError(
                        f"{self.path} has checkpoint format {found!r}, this version reads "
                        f"{_FORMAT!r} (and migrates {', '.join(map(repr, _MIGRATES))}); it was "
                        "not changed"
                    )
            # only now, the file being ours: WAL changes the file's header
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # SIGKILL-safe; only power loss is not
            if "slipstream_meta" in tables and self._format(conn) in _MIGRATES:
                self._migrate(conn)
            with conn:
                conn.executescript(_SCHEMA_SQLITE)
                conn.execute(
                    "INSERT OR IGNORE INTO slipstream_meta VALUES ('format', ?)", (_FORMAT,)
                )
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise CheckpointError(
                    f"{self.path} cannot be read as a checkpoint ({exc}); it was not reset: move "
                    "it away to start over, or pass another path"
                ) from exc
            raise
        self._conn = conn

    @staticmethod
    def _format(conn: sqlite3.Connection) -> str | None:
        row = conn.execute("SELECT value FROM slipstream_meta WHERE key = 'format'").fetchone()
        return None if row is None else str(row[0])

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Format 1 -> 2 in one transaction: the owner columns are added to slipstream_runs
        (no row is rewritten). Another process may migrate at the same moment: the format is
        read again under the write lock."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self._format(conn) in _MIGRATES:
                have = {r[1] for r in conn.execute("PRAGMA table_info(slipstream_runs)")}
                for name, kind in _OWNER_COLUMNS:
                    if name not in have:
                        conn.execute(f"ALTER TABLE slipstream_runs ADD COLUMN {name} {kind}")
                conn.execute(
                    "UPDATE slipstream_meta SET value = ? WHERE key = 'format'", (_FORMAT,)
                )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise

    def execute(self, sql: str, rows: Sequence[Sequence[Any]] | None = None) -> list[Any]:
        assert self._conn is not None
        with self._conn:
            if rows is not None:
                self._conn.executemany(sql, rows)
                return []
            return self._conn.execute(sql).fetchall()

    def query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        assert self._conn is not None
        return self._conn.execute(sql, params).fetchall()

    def beat(self, sql: str, params: Sequence[Any]) -> bool:
        """A heartbeat; False (nothing written) once the store is closed."""
        if self._conn is None:
            return False
        with self._conn:
            self._conn.execute(sql, params)
        return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_SCHEMA_SQLITE = """
CREATE TABLE IF NOT EXISTS slipstream_meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS slipstream_runs (
    run_id TEXT PRIMARY KEY, state TEXT, created REAL, updated REAL, info TEXT,
    host TEXT, pid INTEGER, process TEXT, heartbeat REAL);
CREATE TABLE IF NOT EXISTS slipstream_items (
    run_id TEXT, key TEXT, status TEXT, stage TEXT, error TEXT, detail TEXT, updated REAL,
    PRIMARY KEY (run_id, key));
"""

_SCHEMA_PG = """
CREATE TABLE IF NOT EXISTS slipstream_runs (
    run_id TEXT PRIMARY KEY, state TEXT, created DOUBLE PRECISION, updated DOUBLE PRECISION,
    info TEXT, host TEXT, pid INTEGER, process TEXT, heartbeat DOUBLE PRECISION);
CREATE TABLE IF NOT EXISTS slipstream_items (
    run_id TEXT, key TEXT, status TEXT, stage TEXT, error TEXT, detail TEXT,
    updated DOUBLE PRECISION, PRIMARY KEY (run_id, key));
"""


class Checkpoint:
    """The per-item state of pipeline runs, in a SQLite file or a PostgreSQL database.

    Args:
        target: a file path (SQLite, created if missing) or a ``postgresql://`` URL (needs
            ``slipstream[postgres]``; the tables ``slipstream_runs`` and ``slipstream_items``
            are created if missing, and the owner columns added to a table that lacks them).
        heartbeat_s: how often a running run's heartbeat is renewed. A ``running`` run seen
            from another machine reads ``interrupted`` once its heartbeat is older than
            ``4 * heartbeat_s`` (on the same machine the process itself is checked).

    Use ``async with ss.Checkpoint(path) as cp:``; a ``Pipeline`` opens it for you.

    Raises (on open):
        CheckpointError: the file is not a checkpoint, is damaged or has a format this version
            does not know; or the database cannot be reached. Nothing is reset.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] = "slipstream-checkpoint.sqlite",
        *,
        heartbeat_s: float = 15.0,
    ) -> None:
        if not isinstance(target, str | os.PathLike):
            raise TypeError(
                f"'target' must be a file path or a postgresql:// URL, got {type(target).__name__}"
            )
        self.heartbeat_s = check_seconds("heartbeat_s", heartbeat_s)
        self.target = str(target)
        self._pg = self.target.startswith(("postgresql://", "postgres://"))
        self._sqlite = None if self._pg else _SqliteStore(Path(self.target))
        self._pool: Any = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Task[None] | None = None
        self._open = False
        self._writes = 0  # on the event loop's thread
        self._beats = 0  # on heartbeat threads
        self._heartbeats: dict[str, _Heartbeat] = {}

    @property
    def writes(self) -> int:
        """Transactions written (items, run states, heartbeats): the database round trips."""
        return self._writes + self._beats

    def __repr__(self) -> str:
        return f"Checkpoint({self.target!r})"

    async def __aenter__(self) -> Checkpoint:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Open (and check) the store; a no-op when it is open already. Concurrent calls share
        one opening; a PostgreSQL pool left by an event loop that has closed is replaced."""
        loop = asyncio.get_running_loop()
        owner = self._pool_loop
        if self._open and owner is not None and owner is not loop and owner.is_closed():
            # its connections died with that loop: open again on this one
            self._pool, self._pool_loop, self._open = None, None, False
        if self._open:
            return
        opening = self._opening
        if opening is None or opening.get_loop() is not loop:
            opening = self._opening = loop.create_task(self._open_store())
            opening.add_done_callback(_retrieve)  # a caller cancelled meanwhile: not logged
        try:
            await asyncio.shield(opening)
        finally:
            if opening.done() and self._opening is opening:
                self._opening = None

    async def _open_store(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.call(self._sqlite.open)
            self._open = True
            return
        try:
            import asyncpg  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - the extra is installed in dev
            raise CheckpointError(
                "a PostgreSQL checkpoint needs asyncpg: pip install 'slipstream[postgres]'"
            ) from exc
        try:
            pool = await asyncpg.create_pool(self.target, min_size=1, max_size=2)
        except (OSError, asyncpg.PostgresError) as exc:
            raise CheckpointError(f"cannot reach the checkpoint database: {exc}") from exc
        try:
            async with pool.acquire() as conn:
                await conn.execute(_SCHEMA_PG)
                have = {
                    r[0]
                    for r in await conn.fetch(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_schema = current_schema() AND table_name = 'slipstream_runs'"
                    )
                }
                for name, kind in _OWNER_COLUMNS:
                    if name not in have:  # a table made by an earlier version: add, keep rows
                        kind = "DOUBLE PRECISION" if kind == "REAL" else kind
                        await conn.execute(
                            f"ALTER TABLE slipstream_runs ADD COLUMN IF NOT EXISTS {name} {kind}"
                        )
        except BaseException:
            await pool.close()
            raise
        self._pool, self._pool_loop = pool, asyncio.get_running_loop()
        self._open = True

    async def aclose(self) -> None:
        self._open = False
        for heartbeat in self._heartbeats.values():
            heartbeat.stop()
        self._heartbeats.clear()
        if self._sqlite is not None:
            await self._sqlite.call(self._sqlite.close)
        elif self._pool is not None:
            pool, self._pool, self._pool_loop = self._pool, None, None
            await pool.close()

    # -- one statement, either store -------------------------------------------------------

    async def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        self._writes += 1
        if self._sqlite is not None:
            await self._sqlite.call(self._sqlite.execute, sql, rows)
            return
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(_pg_sql(sql), rows)

    async def _read(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self._sqlite is not None:
            return list(await self._sqlite.call(self._sqlite.query, sql, params))
        async with self._pool.acquire() as conn:
            return [tuple(r) for r in await conn.fetch(_pg_sql(sql), *params)]

    # -- runs --------------------------------------------------------------------------------

    async def start_run(self, run_id: str, info: dict[str, Any] | None = None) -> None:
        """Record that ``run_id`` is running in this process (created on first use, kept on
        resume), and keep its heartbeat until ``set_state`` records another state."""
        now = time.time()
        process = _this_process()
        await self._write(
            "INSERT INTO slipstream_runs "
            "(run_id, state, created, updated, info, host, pid, process, heartbeat) "
            "VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
            "state = 'running', updated = excluded.updated, info = excluded.info, "
            "host = excluded.host, pid = excluded.pid, process = excluded.process, "
            "heartbeat = excluded.heartbeat",
            [
                (
                    run_id,
                    now,
                    now,
                    json.dumps(info or {}, default=str),
                    socket.gethostname(),
                    os.getpid(),
                    process,
                    now,
                )
            ],
        )
        self._keep_alive(run_id, process)

    def _keep_alive(self, run_id: str, process: str | None) -> None:
        previous = self._heartbeats.pop(run_id, None)
        if previous is not None:
            previous.stop()
        # only this process's own running record is renewed: a beat arriving after the run
        # ended, or after another process took the run over, changes nothing
        sql = (
            "UPDATE slipstream_runs SET heartbeat = ? WHERE run_id = ? AND state = 'running' "
            "AND pid = ? AND host = ?"
        )
        owner = (run_id, os.getpid(), socket.gethostname())
        if self._sqlite is not None:
            store, pool = self._sqlite, self._sqlite._pool

            def beat() -> bool:
                if not pool.submit(store.beat, sql, (time.time(), *owner)).result(timeout=60):
                    return False
                self._beats += 1
                return True

        else:
            loop = asyncio.get_running_loop()

            async def write() -> bool:
                pool = self._pool
                if pool is None or not self._open:
                    return False
                async with pool.acquire() as conn:
                    await conn.execute(_pg_sql(sql), time.time(), *owner)
                return True

            def beat() -> bool:
                if loop.is_closed():
                    return False
                if not asyncio.run_coroutine_threadsafe(write(), loop).result(timeout=60):
                    return False
                self._beats += 1
                return True

        self._heartbeats[run_id] = _Heartbeat(beat, self.heartbeat_s)

    async def set_state(self, run_id: str, state: RunState) -> None:
        """Record the run's state; any state but ``running`` ends its heartbeat here."""
        if state != "running":
            heartbeat = self._heartbeats.pop(run_id, None)
            if heartbeat is not None:
                heartbeat.stop()
        await self._write(
            "UPDATE slipstream_runs SET state = ?, updated = ? WHERE run_id = ?",
            [(state, time.time(), run_id)],
        )

    # -- items -------------------------------------------------------------------------------

    async def mark(
        self,
        run_id: str,
        status: str,
        entries: Iterable[tuple[str, str, str, str]],
    ) -> None:
        """Record ``(key, stage, error, detail)`` entries as ``status``, in one transaction."""
        if status not in _STATUSES:
            raise ValueError(f"'status' must be one of {_STATUSES}, got {status!r}")
        now = time.time()
        rows = [
            (run_id, key, status, stage, error, detail, now)
            for key, stage, error, detail in entries
        ]
        await self._write(
            "INSERT INTO slipstream_items (run_id, key, status, stage, error, detail, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id, key) DO UPDATE SET status = excluded.status, "
            "stage = excluded.stage, error = excluded.error, detail = excluded.detail, "
            "updated = excluded.updated",
            rows,
        )

    async def mark_done(self, run_id: str, keys: Iterable[str]) -> None:
        await self.mark(run_id, "done", ((k, "", "", "") for k in keys))

    async def keys(self, run_id: str, status: str) -> set[str]:
        """The keys of ``run_id`` with ``status``."""
        rows = await self._read(
            "SELECT key FROM slipstream_items WHERE run_id = ? AND status = ?", run_id, status
        )
        return {r[0] for r in rows}

    async def failures(self, run_id: str) -> list[FailedItem]:
        """The failed items of ``run_id``, with their stage, error and raw detail."""
        rows = await self._read(
            "SELECT key, stage, error, detail FROM slipstream_items "
            "WHERE run_id = ? AND status = 'failed' ORDER BY key",
            run_id,
        )
        return [FailedItem(key=k, stage=s, error=e, detail=d) for k, s, e, d in rows]

    async def status(self, run_id: str) -> RunStatus | None:
        """The run's counts and state; None for a run this checkpoint has never seen. A run
        recorded as ``running`` whose process is gone reads ``interrupted``."""
        runs = await self._read(
            "SELECT state, created, updated, info, host, pid, process, heartbeat "
            "FROM slipstream_runs WHERE run_id = ?",
            run_id,
        )
        if not runs:
            return None
        state, created, updated, info, host, pid, process, heartbeat = runs[0]
        counts = dict(
            await self._read(
                "SELECT status, COUNT(*) FROM slipstream_items WHERE run_id = ? GROUP BY status",
                run_id,
            )
        )
        state = judge_state(
            state,
            pid=None if pid is None else int(pid),
            process=process,
            heartbeat=None if heartbeat is None else float(heartbeat),
            updated=float(updated),
            now=time.time(),
            stale_s=4 * self.heartbeat_s,
        )
        return RunStatus(
            run_id=run_id,
            state=state,
            done=int(counts.get("done", 0)),
            failed=int(counts.get("failed", 0)),
            skipped=int(counts.get("skipped", 0)),
            created=float(created),
            updated=float(updated),
            info=json.loads(info or "{}"),
            host=host,
            pid=None if pid is None else int(pid),
            heartbeat=None if heartbeat is None else float(heartbeat),
        )

    async def runs(self) -> list[str]:
        """Every run id, oldest first."""
        return [
            r[0] for r in await self._read("SELECT run_id FROM slipstream_runs ORDER BY created")
        ]


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _pg_sql(sql: str) -> str:
    """Turn ``?`` placeholders into asyncpg's ``$n`` (the statements here have no literals
    containing ``?``)."""
    parts = sql.split("?")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))
