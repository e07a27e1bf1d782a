"""The flow-control demo: 500 calls to a flaky local endpoint, naive against slipstream.

The naive client is the seeds' "before": a sequential loop whose failures become ``None``.
The slipstream client is one ``ss.map`` call with concurrency, a rate limit under the server's,
retries that honour ``Retry-After``, and a per-call timeout. Run with ``make demo``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import slipstream as ss

RATE = 280  # under the server's 300/s
SERVER = Path(__file__).with_name("server.py")
sys.path.insert(0, str(SERVER.parents[1]))
from _serving import running  # noqa: E402  (examples/ is not a package)


def running_server(*extra: str) -> contextlib.AbstractContextManager[str]:
    """Start the flaky endpoint in its own process; yield its base URL; stop it after."""
    return running(SERVER, *extra)


@dataclass
class Row:
    name: str
    seconds: float
    calls: int
    retries: int
    failures: int
    correct: int


async def server_calls(client: httpx.AsyncClient) -> int:
    return sum((await client.get("/stats")).json().values())


async def naive(url: str, n: int) -> Row:
    """The seeds' loop: one call at a time, an error becomes None."""
    async with httpx.AsyncClient(base_url=url) as client:
        before = await server_calls(client)
        t0 = time.perf_counter()
        results: list[Any] = []
        for i in range(n):
            try:
                response = await client.get(f"/item/{i}")
                response.raise_for_status()
                results.append(response.json())
            except Exception:  # the seeds printed and moved on; we only count
                results.append(None)
        seconds = time.perf_counter() - t0
        calls = await server_calls(client) - before
        correct = sum(1 for i, r in enumerate(results) if r and r["square"] == i * i)
        return Row("naive loop", seconds, calls, 0, results.count(None), correct)


async def naive_gather(url: str, n: int) -> Row:
    """Everything at once with asyncio.gather: fast to write, and the server's limit bites."""
    async with httpx.AsyncClient(base_url=url) as client:
        before = await server_calls(client)

        async def fetch(i: int) -> Any:
            try:
                response = await client.get(f"/item/{i}")
                response.raise_for_status()
                return response.json()
            except Exception:
                return None

        t0 = time.perf_counter()
        results = await asyncio.gather(*(fetch(i) for i in range(n)))
        seconds = time.perf_counter() - t0
        calls = await server_calls(client) - before
        correct = sum(1 for i, r in enumerate(results) if r and r["square"] == i * i)
        return Row("naive gather", seconds, calls, 0, results.count(None), correct)


async def with_slipstream(url: str, n: int, *, progress: bool) -> Row:
    """One ss.map: bounded concurrency, a rate under the server's, honest retries."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, limits=limits) as client:
        before = await server_calls(client)

        async def fetch(i: int) -> dict[str, int]:
            response = await client.get(f"/item/{i}")
            response.raise_for_status()
            return response.json()  # type: ignore[no-any-return]

        t0 = time.perf_counter()
        results = await ss.map(
            fetch,
            range(n),
            concurrency=32,
            rate=ss.Rate(per_second=RATE, burst=10),
            retry=ss.Retry(attempts=6, deadline_s=30),
            timeout_s=5,
            progress=progress,
        )
        seconds = time.perf_counter() - t0
        calls = await server_calls(client) - before
        correct = sum(1 for o in results if o.ok and o.value["square"] == o.item**2)
        s = results.summary
        print(f"slipstream summary: {s}")
        return Row("ss.map", seconds, calls, s.retries, s.failed, correct)


def show(rows: list[Row], n: int) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        for r in rows:
            print(r)
        return
    table = Table(title=f"{n} calls to a flaky endpoint (latency, 429 + Retry-After, 5% 500s)")
    for col in ("approach", "time (s)", "calls", "retries", "failures", "correct", "items/s"):
        table.add_column(col, justify="left" if col == "approach" else "right")
    for r in rows:
        table.add_row(
            r.name,
            f"{r.seconds:.2f}",
            str(r.calls),
            str(r.retries),
            str(r.failures),
            f"{r.correct}/{n}",
            f"{n / r.seconds:.0f}",
        )
    Console().print(table)
    first, last = rows[0], rows[-1]
    print(
        f"ss.map against the naive loop: {first.seconds / last.seconds:.1f}x faster, "
        f"failures {first.failures} -> {last.failures}"
    )


async def main(n: int, progress: bool) -> list[Row]:
    with running_server() as url:
        print(f"flaky endpoint on {url}; running {n} calls each way ...")
        rows = [
            await naive(url, n),
            await naive_gather(url, n),
            await with_slipstream(url, n, progress=progress),
        ]
    show(rows, n)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.n, not args.no_progress))
