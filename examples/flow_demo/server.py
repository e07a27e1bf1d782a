"""A flaky HTTP endpoint on 127.0.0.1 for the flow-control demo and its tests.

``GET /item/{n}`` answers ``{"n": n, "square": n*n}`` after a lognormal latency (median
``--latency-ms``), unless it answers one of:

- 429 with ``Retry-After`` when its own token bucket (``--limit`` per second) is empty, or at
  random for ``--p429`` of requests (an overloaded upstream);
- 500 for ``--p500`` of requests (transient).

``GET /stats`` returns the counts of answers by status. Run it alone with
``python examples/flow_demo/server.py``; it prints ``PORT <n>`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections import Counter
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import slipstream as ss

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _serving import serve


def build_app(*, latency_ms: float, p500: float, p429: float, limit: float, seed: int) -> Starlette:
    rng = random.Random(seed)
    counts: Counter[int] = Counter()
    # the server's own limit: slipstream's limiter as admission control (no waiting)
    bucket = ss.RateLimiter(ss.Rate(per_second=limit, burst=max(1.0, limit / 10)))

    async def item(request: Request) -> JSONResponse:
        n = int(request.path_params["n"])
        if bucket.try_acquire() > 0:
            counts[429] += 1
            return JSONResponse(
                {"error": "rate limited"}, status_code=429, headers={"Retry-After": "1"}
            )
        roll = rng.random()
        await asyncio.sleep(rng.lognormvariate(0, 0.5) * latency_ms / 1000)
        if roll < p429:
            counts[429] += 1
            return JSONResponse(
                {"error": "overloaded"}, status_code=429, headers={"Retry-After": "1"}
            )
        if roll < p429 + p500:
            counts[500] += 1
            return JSONResponse({"error": "transient"}, status_code=500)
        counts[200] += 1
        return JSONResponse({"n": n, "square": n * n})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({str(k): v for k, v in sorted(counts.items())})

    return Starlette(routes=[Route("/item/{n:int}", item), Route("/stats", stats)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--p500", type=float, default=0.05)
    parser.add_argument("--p429", type=float, default=0.02)
    parser.add_argument("--limit", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    app = build_app(
        latency_ms=args.latency_ms,
        p500=args.p500,
        p429=args.p429,
        limit=args.limit,
        seed=args.seed,
    )
    serve(app, args.port)


if __name__ == "__main__":
    main()
