"""A rate that finds the server's limit: AdaptiveRate against fixed rates and no rate.

A local HTTP server (its own process) admits 25 requests a second (token bucket, burst 5) and
answers 429 with a Retry-After above that. Each variant sends the same items through
``ss.map(concurrency=16, retry=ss.Retry(attempts=6))`` with httpx:

  none          no client-side rate (the user report: most items fail)
  none_unlimited  the same with RetryBudget.unlimited()
  fixed_50      a fixed rate twice too high
  fixed_25      the right fixed rate (the physical bound: knowing the limit)
  adaptive      ss.AdaptiveRate(initial_per_s=10), knowing nothing

Figures per variant: ok, failed, goodput_ratio (successes per second over the run / the
server's 25/s), r429_per_success (server rejections per success), elapsed_s.
Last line JSON: adaptive_goodput_ratio, adaptive_failed, adaptive_429_per_success and the same
for the other variants (plus the poll figures of bench_poll.py when that file exists).

Run: python benchmarks/bench_adaptive.py --quick
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import httpx
from _common import parse_args, report

import slipstream as ss

LIMIT, BURST = 25.0, 5.0
HERE = os.path.dirname(os.path.abspath(__file__))


def variants() -> dict[str, tuple[Any, ss.Retry]]:
    retry = ss.Retry(attempts=6)
    unlimited = ss.Retry(attempts=6, budget=ss.RetryBudget.unlimited())
    return {
        "none": (None, retry),
        "none_unlimited": (None, unlimited),
        "fixed_50": (ss.Rate(per_second=50), retry),
        "fixed_25": (ss.Rate(per_second=25), retry),
        "adaptive": (ss.AdaptiveRate(initial_per_s=10), retry),
    }


async def run_variant(url: str, n: int, rate: Any, retry: ss.Retry) -> dict[str, float]:
    async with httpx.AsyncClient() as client:
        await client.get(f"{url}/reset")

        async def fetch(i: int) -> int:
            response = await client.get(f"{url}/item/{i}")
            response.raise_for_status()
            return response.status_code

        t0 = time.monotonic()
        results = await ss.map(fetch, range(n), concurrency=16, rate=rate, retry=retry)
        elapsed = time.monotonic() - t0
        ok_seen, rejected = map(int, (await client.get(f"{url}/stats")).text.split())
    s = results.summary
    return {
        "ok": s.ok,
        "failed": s.failed,
        "elapsed_s": elapsed,
        "goodput_ratio": s.ok / elapsed / LIMIT,
        "r429_per_success": rejected / max(1, s.ok),
        "server_ok": ok_seen,
    }


def poll_figures(quick: bool) -> dict[str, Any]:
    """---- MERGE POINT for the lead: the figures of benchmarks/bench_poll.py, if present ----"""
    try:
        from bench_poll import figures  # type: ignore[import-not-found]
    except ImportError:
        return {}
    result = figures(quick)
    return dict(result) if isinstance(result, dict) else {}


def main() -> None:
    args = parse_args(__doc__ or "")
    n = 200 if args.quick else 300
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "_limited_server.py"), str(LIMIT), str(BURST)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = f"http://127.0.0.1:{int(proc.stdout.readline().split()[1])}"
        figures: dict[str, Any] = {"items": n, "server_limit_per_s": LIMIT}
        for name, (rate, retry) in variants().items():
            got = asyncio.run(run_variant(url, n, rate, retry))
            print(f"{name:>15}: {got}", flush=True)
            figures[f"{name}_goodput_ratio"] = got["goodput_ratio"]
            figures[f"{name}_failed"] = got["failed"]
            figures[f"{name}_429_per_success"] = got["r429_per_success"]
            figures[f"{name}_elapsed_s"] = got["elapsed_s"]
            if name == "adaptive":
                figures["adaptive_final_rate_per_s"] = rate.rate_per_s
        figures["adaptive_goodput_over_fixed_25"] = (
            figures["adaptive_goodput_ratio"] / figures["fixed_25_goodput_ratio"]
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    figures.update(poll_figures(args.quick))
    report(figures)


if __name__ == "__main__":
    main()
