"""A local OpenAI-compatible chat-completions endpoint for the annotation workload.

``POST /v1/chat/completions`` answers, after a lognormal latency (median ``--latency-ms``,
shape ``--sigma``), with ``answer_for(user message, response_format's schema)`` as the message
content: deterministic and valid against the schema (unless the document asks for garbage), so
results can be checked. It also answers, as real providers do:

- 429 with ``Retry-After`` (seconds, fractional) when its own rate limit (``--rate`` per
  second, GCRA with a burst of ``--burst``) is exceeded;
- 503 for ``--p5xx`` of requests, at random (transient).

``GET /v1/models`` lists the one model (clients check the endpoint with it); ``GET /stats``
returns the counts of answers by status. Run it alone with
``python examples/annotation/emulator.py``; it prints ``PORT <n>`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import slipstream as ss

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _serving import serve
from workload import answer_for


def build_app(
    *, latency_ms: float, sigma: float, rate: float, burst: float, p5xx: float, seed: int
) -> Starlette:
    rng = random.Random(seed)
    counts: Counter[int] = Counter()
    # its rate limit: slipstream's limiter as admission control (no waiting, a 429 instead)
    limiter = ss.RateLimiter(ss.Rate(per_second=rate, burst=burst)) if rate > 0 else None

    async def completions(request: Request) -> JSONResponse:
        wait = limiter.try_acquire() if limiter is not None else 0.0
        if wait > 0:
            counts[429] += 1
            return JSONResponse(
                {"error": {"message": "rate limit exceeded", "type": "rate_limit"}},
                status_code=429,
                headers={"Retry-After": f"{wait:.3f}", "retry-after-ms": str(int(wait * 1000))},
            )
        try:
            body: dict[str, Any] = await request.json()
        except ClientDisconnect:  # the client was killed mid-request (the resume benchmark)
            counts[499] += 1
            return JSONResponse({}, status_code=499)
        try:
            document = next(m["content"] for m in body["messages"] if m["role"] == "user")
            schema = body["response_format"]["json_schema"]["schema"]
        except (KeyError, StopIteration, TypeError):
            counts[400] += 1
            return JSONResponse({"error": {"message": "bad request"}}, status_code=400)
        roll = rng.random()
        await asyncio.sleep(rng.lognormvariate(0, sigma) * latency_ms / 1000)
        if roll < p5xx:
            counts[503] += 1
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        counts[200] += 1
        content = json.dumps(answer_for(document, schema))
        return JSONResponse(
            {
                "id": f"chatcmpl-{counts[200]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "annotator"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": len(document) // 4, "completion_tokens": 20},
            }
        )

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "annotator", "object": "model"}]})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({str(k): v for k, v in sorted(counts.items())})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/v1/models", models),
            Route("/stats", stats),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=80.0)
    parser.add_argument("--sigma", type=float, default=0.3)
    parser.add_argument("--rate", type=float, default=300.0, help="per second; 0: no limit")
    parser.add_argument("--burst", type=float, default=10.0)
    parser.add_argument("--p5xx", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    serve(
        build_app(
            latency_ms=args.latency_ms,
            sigma=args.sigma,
            rate=args.rate,
            burst=args.burst,
            p5xx=args.p5xx,
            seed=args.seed,
        ),
        args.port,
    )


if __name__ == "__main__":
    main()
