"""Real faults for the exactly-once tests on PostgreSQL: backends terminated at random (seeded)
moments, and a TCP proxy that forwards a COMMIT and drops the server's reply; plus the helpers
those tests share."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import slipstream as ss

ROWS = 10_000
KILLS = 24  # at least this many backends terminated per run
KILL_ACTIVE = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE application_name = $1 AND state = 'active'"
)
PATIENT = ss.Retry(
    attempts=200, on=ss.is_connection_error, initial_s=0.002, max_backoff_s=0.03, deadline_s=60
)


def names() -> tuple[str, str, str]:
    """A table, a marker table and an application_name, all unique to one test."""
    tag = uuid.uuid4().hex[:10]
    return f"kills_{tag}", f"marks_{tag}", f"slipstream_kills_{tag}"


class CommitProxy:
    """A TCP proxy to PostgreSQL. When armed, it forwards the next COMMIT to the server, waits
    for the server's reply, drops it and closes the client's side: the commit took effect and
    its acknowledgement was lost. ``refuse_after`` new connections are refused after a drop."""

    def __init__(self) -> None:
        self.armed = 0
        self.dropped = 0
        self.refuse_after = 0
        self._refuse = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> CommitProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    def url(self, scheme: str = "postgresql") -> str:
        return f"{scheme}://postgres@127.0.0.1:{self.port}/test"

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._refuse:
            self._refuse -= 1
            client_w.close()
            return
        server_r, server_w = await asyncio.open_connection("127.0.0.1", 5432)
        commit_sent = asyncio.Event()

        async def upstream() -> None:
            with contextlib.suppress(OSError):
                while data := await client_r.read(65536):
                    at = data.find(b"COMMIT")
                    if self.armed and at >= 5 and data[at - 5 : at - 4] == b"Q":
                        self.armed -= 1
                        commit_sent.set()
                    server_w.write(data)
                    await server_w.drain()
            server_w.close()

        async def downstream() -> None:
            with contextlib.suppress(OSError):
                while data := await server_r.read(65536):
                    if commit_sent.is_set():  # the server has committed: drop its reply
                        self.dropped += 1
                        self._refuse = self.refuse_after
                        break
                    client_w.write(data)
                    await client_w.drain()
            client_w.close()
            server_w.close()

        await asyncio.gather(upstream(), downstream())


@contextlib.asynccontextmanager
async def killer(
    postgres_url: str, application: str, seed: int, limit: int = 2 * KILLS
) -> AsyncIterator[list[int]]:
    """Until the block ends, terminate the backends named ``application`` again and again: a
    random 1-30 ms (seeded) after the last kill, as soon as one is running a statement (COPY,
    COMMIT, the pool's reset after COMMIT), ``limit`` backends at most. Yields the number
    terminated (a one-item list)."""
    import asyncpg

    admin = await asyncpg.connect(postgres_url)
    rnd = random.Random(seed)
    killed = [0]
    stop = asyncio.Event()

    async def kill() -> None:
        while not stop.is_set() and killed[0] < limit:
            await asyncio.sleep(rnd.uniform(0.001, 0.03))
            while not stop.is_set():
                terminated = await admin.fetchval(KILL_ACTIVE, application)
                if terminated:
                    killed[0] += terminated
                    break

    task = asyncio.ensure_future(kill())
    try:
        yield killed
    finally:
        stop.set()
        await task
        await admin.close()


async def produce(writer: ss.BatchWriter[Any], rows: Iterator[Any], killed: list[int]) -> None:
    """Add rows in small chunks, pausing so the kills land all along the run; keep writing
    (slowly) until enough backends were terminated."""
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == 40:
            await writer.add_many(chunk)
            chunk = []
            await asyncio.sleep(0.008 if killed[0] < KILLS else 0)
    await writer.add_many(chunk)


async def flushed(writer: ss.BatchWriter[Any], flushes: int) -> None:
    """Wait (5 s at most) until the writer has made ``flushes`` flushes."""
    for _ in range(1000):
        if writer.statistics().flushes >= flushes:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"no flush {flushes} in 5 s: {writer!r}")


async def counts(postgres_url: str, table: str) -> tuple[int, int]:
    import asyncpg

    conn = await asyncpg.connect(postgres_url)
    try:
        row = await conn.fetchrow(f"SELECT count(*), count(DISTINCT id) FROM {table}")
        return int(row[0]), int(row[1])
    finally:
        await conn.close()


async def drop(postgres_url: str, *tables: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(postgres_url)
    try:
        for table in tables:
            await conn.execute(f"DROP TABLE IF EXISTS {table}")
    finally:
        await conn.close()
