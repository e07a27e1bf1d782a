"""Seed 004's scenario: does the API stay responsive while the pipeline runs?

A Starlette app served by uvicorn on 127.0.0.1 (its own process) runs a background pipeline:
delete 200,000 cache rows from SQLite, then a 2 s CPU-bound refresh. This process asks /health
every 10 ms meanwhile, on schedule (latency counts from the scheduled send time, so a blocked
server cannot hide behind a waiting client). Naive: both on the event loop. slipstream:
ss.chunked_delete (worker thread, 2,000 rows a chunk) and ss.offload(kind="process"). When
PostgreSQL answers on 127.0.0.1:5432 the same pair runs against it: psycopg2 on the loop against
ss.chunked_delete on an asyncpg pool (figures prefixed ``pg_``).

Figures (last line, JSON): naive_p99_ms, slipstream_p99_ms, improvement (naive / slipstream),
slipstream_lag_p99_ms (LoopWatch inside the server), loopwatch_named_culprit (LoopWatch named
the naive pipeline's blocking functions), loopwatch_overhead_pct (CPU of an idle loop with
LoopWatch at its defaults, % of one core), monitor_measure_us (one `with monitor.measure()`).
Offload limits (issue 13): 16 concurrent CPU-heavy pure-Python jobs offloaded from one loop
while a 1 ms ticker measures its lag: offload_naive_lag_p99_ms (bare ss.offload, all 16 in the
shared thread pool, as in the user report), offload_lag_p99_ms (the default settings for CPU
work, kind="cpu": the "cpu" lane, one thread at nice 10), offload_process_lag_p99_ms
(kind="process"), and each one's wall time (offload_*_wall_s).

Run: python benchmarks/bench_responsiveness.py --quick
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import PG_URL, parse_args, pg_up, report

import slipstream as ss

APP = Path(__file__).with_name("_responsive_app.py")


def make_db(path: Path, n: int = 400_000) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE cache (k TEXT, ns TEXT, v BLOB)")
    conn.executemany(
        "INSERT INTO cache VALUES (?, ?, ?)",
        ((f"k{i}", "genes" if i % 2 else "other", b"x" * 64) for i in range(n)),
    )
    conn.commit()
    conn.close()


def make_pg_db(url: str, n: int = 400_000) -> None:
    import io

    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS cache")
            cur.execute("CREATE TABLE cache (k TEXT, ns TEXT, v BYTEA)")
            rows = "".join(f"k{i}\t{'genes' if i % 2 else 'other'}\t{'x' * 64}\n" for i in range(n))
            cur.copy_from(io.StringIO(rows), "cache", columns=("k", "ns", "v"))
        with conn, conn.cursor() as cur:
            cur.execute("ANALYZE cache")
    finally:
        conn.close()


def drop_pg_db(url: str) -> None:
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS cache")
    finally:
        conn.close()


async def probe(url: str, mode: str, db: str) -> tuple[list[float], dict[str, object]]:
    """Start the pipeline, then ask /health on a fixed 10 ms schedule until it is done.

    Requests go out on schedule whether or not the previous one has answered, and each latency
    counts from its scheduled time: a client waiting on a blocked server would otherwise send
    one request during a 2 s block and report one slow sample (coordinated omission).
    """
    import httpx

    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    state: dict[str, object] = {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def health(scheduled: float) -> None:
            await client.get("/health")
            latencies.append(loop.time() - scheduled)

        async def watch_done() -> None:
            while not state.get("done"):
                await asyncio.sleep(0.1)
                state.update((await client.get("/done")).json())

        await client.post("/run", params={"mode": mode, "db": db})
        await asyncio.sleep(0.05)
        async with asyncio.TaskGroup() as tg:
            watcher = tg.create_task(watch_done())
            start, i = loop.time(), 0
            while not watcher.done():
                scheduled = start + i * 0.01
                i += 1
                await asyncio.sleep(max(0.0, scheduled - loop.time()))
                tg.create_task(health(scheduled))
    return latencies, state


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[98] * 1000


def loopwatch_overhead(seconds: float) -> float:
    async def idle(watch: bool) -> float:
        t0, c0 = time.perf_counter(), time.process_time()
        if watch:
            async with ss.LoopWatch():
                await asyncio.sleep(seconds)
        else:
            await asyncio.sleep(seconds)
        return (time.process_time() - c0) / (time.perf_counter() - t0) * 100

    return asyncio.run(idle(True)) - asyncio.run(idle(False))


def pure_python_checksum(n: int) -> int:
    """CPU-heavy pure Python standing in for a zip export: an Adler-32 over n bytes."""
    a, b = 1, 0
    for i in range(n):
        a = (a + (i & 255)) % 65521
        b = (b + a) % 65521
    return (b << 16) | a


async def offload_lag(kind: str, jobs: int, n: int) -> tuple[float, float]:
    """Loop lag p99 (ms) and wall time (s) while ``jobs`` concurrent jobs are offloaded."""
    loop = asyncio.get_running_loop()
    if kind == "process":  # start the workers first: their start-up is not the figure
        warm = (ss.offload(pure_python_checksum, 10, kind="process") for _ in range(4))
        await asyncio.gather(*warm)
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            t = loop.time()
            await asyncio.sleep(0.001)
            lags.append(loop.time() - t - 0.001)

    tick = asyncio.create_task(ticker())
    t0 = time.perf_counter()
    if kind == "naive":
        calls = [ss.offload(pure_python_checksum, n) for _ in range(jobs)]
    else:
        calls = [ss.offload(pure_python_checksum, n, kind=kind) for _ in range(jobs)]  # type: ignore[arg-type]
    await asyncio.gather(*calls)
    wall = time.perf_counter() - t0
    done.set()
    await tick
    return p99(lags), wall


def monitor_cost(n: int) -> float:
    m = ss.Monitor()
    t0 = time.perf_counter()
    for _ in range(n):
        with m.measure("op"):
            pass
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    args = parse_args(__doc__ or "")
    figures: dict[str, object] = {}
    n = 1_000_000 if args.quick else 3_000_000  # about 0.1 s (0.3 s) of one core a job
    for kind in ("naive", "cpu", "process"):
        print(f"16 concurrent CPU-heavy jobs, offload {kind} ...")
        lag, wall = asyncio.run(offload_lag(kind, 16, n))
        key = "offload" if kind == "cpu" else f"offload_{kind}"
        figures[f"{key}_lag_p99_ms"] = lag
        figures[f"{key}_wall_s"] = wall
    server = subprocess.Popen([sys.executable, str(APP)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline().split()[1])}"
        time.sleep(0.5)
        with tempfile.TemporaryDirectory() as tmp:
            for mode in ("naive", "slipstream"):
                db = Path(tmp) / f"{mode}.sqlite"
                make_db(db)
                print(f"SQLite, {mode}: pipeline running, asking /health every 10 ms ...")
                latencies, state = asyncio.run(probe(url, mode, str(db)))
                figures[f"{mode}_p99_ms"] = p99(latencies)
                figures[f"{mode}_max_ms"] = max(latencies) * 1000
                figures[f"{mode}_requests"] = len(latencies)
                if mode == "naive":
                    culprits = state["culprits"]
                    figures["loopwatch_named_culprit"] = bool(
                        {"delete_cache_namespace", "refresh_materialized_view"} & set(culprits)  # type: ignore[arg-type]
                    )
                    figures["loopwatch_culprits"] = ",".join(sorted(set(culprits)))  # type: ignore[arg-type]
                else:
                    figures["slipstream_lag_p99_ms"] = state["lag_p99_ms"]
        figures["improvement"] = figures["naive_p99_ms"] / figures["slipstream_p99_ms"]  # type: ignore[operator]
        if pg_up():
            try:
                for mode in ("naive", "slipstream"):
                    make_pg_db(PG_URL)
                    print(f"PostgreSQL, {mode}: pipeline running, asking /health every 10 ms ...")
                    latencies, state = asyncio.run(probe(url, mode, PG_URL))
                    figures[f"pg_{mode}_p99_ms"] = p99(latencies)
                    figures[f"pg_{mode}_max_ms"] = max(latencies) * 1000
                    if mode == "slipstream":
                        figures["pg_slipstream_lag_p99_ms"] = state["lag_p99_ms"]
            finally:
                drop_pg_db(PG_URL)
            figures["pg_improvement"] = figures["pg_naive_p99_ms"] / figures["pg_slipstream_p99_ms"]  # type: ignore[operator]
        else:
            print("PostgreSQL is not running on 127.0.0.1:5432: its pair is left out")
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
    print("LoopWatch overhead and monitor cost ...")
    figures["loopwatch_overhead_pct"] = loopwatch_overhead(3.0)
    figures["monitor_measure_us"] = monitor_cost(200_000)
    report(figures)


if __name__ == "__main__":
    main()
