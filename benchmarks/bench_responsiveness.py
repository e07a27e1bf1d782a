"""Seed 004's scenario: does the API stay responsive while the pipeline runs?

A Starlette app served by uvicorn on 127.0.0.1 (its own process) runs a background pipeline:
delete 200,000 cache rows from SQLite, then a 2 s CPU-bound refresh. This process asks /health
every 10 ms meanwhile. Naive: both on the event loop. slipstream: ss.chunked_delete (worker
thread, 2,000 rows a chunk) and ss.offload(kind="process").

Figures (last line, JSON): naive_p99_ms, slipstream_p99_ms, improvement (naive / slipstream),
slipstream_lag_p99_ms (LoopWatch inside the server), loopwatch_named_culprit (LoopWatch named
the naive pipeline's blocking functions), loopwatch_overhead_pct (CPU of an idle loop with
LoopWatch at its defaults, % of one core), monitor_measure_us (one `with monitor.measure()`).
PostgreSQL is not part of this run yet (see docs/benchmarks.md).

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

from _common import parse_args, report

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


async def probe(url: str, mode: str, db: Path) -> tuple[list[float], dict[str, object]]:
    import httpx

    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await client.post("/run", params={"mode": mode, "db": str(db)})
        await asyncio.sleep(0.05)
        while True:
            t0 = time.perf_counter()
            await client.get("/health")
            latencies.append(time.perf_counter() - t0)
            state = (await client.get("/done")).json()
            if state["done"]:
                return latencies, state
            await asyncio.sleep(0.01)


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


def monitor_cost(n: int) -> float:
    m = ss.Monitor()
    t0 = time.perf_counter()
    for _ in range(n):
        with m.measure("op"):
            pass
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    parse_args(__doc__ or "")
    figures: dict[str, object] = {}
    server = subprocess.Popen([sys.executable, str(APP)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline().split()[1])}"
        time.sleep(0.5)
        with tempfile.TemporaryDirectory() as tmp:
            for mode in ("naive", "slipstream"):
                db = Path(tmp) / f"{mode}.sqlite"
                make_db(db)
                print(f"{mode}: pipeline running, asking /health every 10 ms ...")
                latencies, state = asyncio.run(probe(url, mode, db))
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
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
    figures["improvement"] = figures["naive_p99_ms"] / figures["slipstream_p99_ms"]  # type: ignore[operator]
    print("LoopWatch overhead and monitor cost ...")
    figures["loopwatch_overhead_pct"] = loopwatch_overhead(3.0)
    figures["monitor_measure_us"] = monitor_cost(200_000)
    report(figures)


if __name__ == "__main__":
    main()
