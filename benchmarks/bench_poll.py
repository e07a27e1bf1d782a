"""Polling a job service: how many requests, and how late the "done" is noticed.

One local job service (examples/_job_service.py: POST /jobs, then GET /jobs/{id} answers 202
pending with a Retry-After of the time left, rounded up to 0.1 s, until 200 done), N jobs of a
random (seeded, the same for every contender) duration, all polled at once through httpx inside
ss.map. Contenders:

  fixed        a GET every 0.05 s until done (the lowest latency a client can buy, at a price)
  handrolled   the user's loop: 15 tries, sleep min(2**i * 0.05, 2) between, no Retry-After
  retry        Retry(on=NotReady, attempts=15, initial_s=0.05, max_backoff_s=2) around a single
               GET, as the user first wrote it (the run's RetryBudget runs dry: items fail)
  backoff_only ss.Poller(initial_s=0.05, max_interval_s=2), the server sending no Retry-After
  poll         the same Poller, the server sending Retry-After (the one to use)

Figures (last line, JSON), per contender (poll_ for ss.poll, poll_<name>_ for the others):
  *count            GET requests in all
  *latency_median_s / *latency_p95_s
                    seconds from a job's completion to the GET that saw it (server's clock)
  *failures         jobs not seen done (hand-rolled tries ran out, retry budget spent)
  *total_s          wall seconds for the whole batch

Run: python benchmarks/bench_poll.py --quick
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _common import parse_args, report

import slipstream as ss

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
import httpx
from _job_service import JobService

Strategy = Callable[[httpx.AsyncClient, int], Awaitable[Any]]
FIXED_S = 0.05


async def fixed(client: httpx.AsyncClient, job: int) -> None:
    while True:
        if (await client.get(f"/jobs/{job}")).json()["status"] == "done":
            return
        await asyncio.sleep(FIXED_S)


async def handrolled(client: httpx.AsyncClient, job: int) -> None:
    for i in range(15):
        if (await client.get(f"/jobs/{job}")).json()["status"] == "done":
            return
        await asyncio.sleep(min(2**i * 0.05, 2))
    raise TimeoutError(f"job {job} not done after 15 tries")


async def once(client: httpx.AsyncClient, job: int) -> None:
    if (await client.get(f"/jobs/{job}")).json()["status"] != "done":
        raise ss.NotReady()


def with_poller(poller: ss.Poller) -> Strategy:
    async def poll(client: httpx.AsyncClient, job: int) -> None:
        async def check() -> httpx.Response:
            r = await client.get(f"/jobs/{job}")
            r.raise_for_status()
            return r

        await poller.poll(check, done=lambda r: r.json()["status"] == "done")

    return poll


async def contend(
    strategy: Strategy,
    jobs: int,
    max_s: float,
    *,
    hints: bool = True,
    retry: ss.Retry | None = None,
) -> dict[str, float | None]:
    async with (
        JobService(seed=11, min_s=0.2, max_s=max_s, hints=hints) as service,
        httpx.AsyncClient(
            base_url=service.url, limits=httpx.Limits(max_connections=jobs), timeout=30
        ) as client,
    ):
        ids = [(await client.post("/jobs")).json()["id"] for _ in range(jobs)]
        started = time.perf_counter()
        results = await ss.map(
            lambda job: strategy(client, job), ids, concurrency=jobs, retry=retry
        )
        total_s = time.perf_counter() - started
    latencies = service.latencies_s()  # none when every item failed: no latency to report
    p95 = statistics.quantiles(latencies, n=20)[18] if len(latencies) > 1 else None
    return {
        "count": float(service.gets),
        "latency_median_s": statistics.median(latencies) if latencies else None,
        "latency_p95_s": p95 if p95 is not None else (latencies[0] if latencies else None),
        "failures": float(len(results.failures)),
        "total_s": total_s,
    }


def figures(quick: bool) -> dict[str, float | None]:
    """Run every contender on the same jobs; the flat figures (see the module doc)."""
    jobs, max_s = (100, 3.0) if quick else (300, 6.0)
    poller_options: dict[str, Any] = {"initial_s": 0.05, "max_interval_s": 2.0, "deadline_s": 60}
    retry_as_poll = ss.Retry(
        on=ss.NotReady, attempts=15, initial_s=0.05, max_backoff_s=2, deadline_s=60
    )
    runs: dict[str, dict[str, float | None]] = {
        "fixed": asyncio.run(contend(fixed, jobs, max_s)),
        "handrolled": asyncio.run(contend(handrolled, jobs, max_s)),
        "retry": asyncio.run(contend(once, jobs, max_s, retry=retry_as_poll)),
        "backoff_only": asyncio.run(
            contend(with_poller(ss.Poller(**poller_options)), jobs, max_s, hints=False)
        ),
        "": asyncio.run(contend(with_poller(ss.Poller(**poller_options)), jobs, max_s)),
    }
    out: dict[str, float | None] = {"poll_jobs": float(jobs)}
    for name, run in runs.items():
        prefix = f"poll_{name}_" if name else "poll_"
        out |= {prefix + key: value for key, value in run.items()}
    return out


def main() -> None:
    args = parse_args(__doc__ or "")
    print("polling N jobs of random length: fixed, hand-rolled, Retry, ss.poll ...")
    report(figures(args.quick))


if __name__ == "__main__":
    main()
