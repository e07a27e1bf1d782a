"""A document pipeline, only from slipstream primitives: parse, poll, classify, cache, store.

Each document is uploaded to a parsing service (``POST /jobs``), whose job is polled until it
is done (``GET /jobs/{id}``: ``202`` with a ``Retry-After`` until then); the parsed text is
classified by an LLM (an OpenAI-compatible chat-completions endpoint) that answers ``429`` with
``Retry-After`` past its rate limit; the answers are cached by prompt in a SQLite file, so a
restarted run pays for no prompt twice; the labels are upserted into PostgreSQL. What does what:

- ``ss.Registry``: one HTTP client per service and one database pool per run, closed after it;
- ``ss.Poller``: one polling schedule shared by every document; it honours the service's
  ``Retry-After``, retries a 503 or a reset apart from "not ready" (never spending a retry
  budget on a pending job) and stops at ``poll_deadline_s`` with ``ss.PollTimeout``;
- ``ss.AdaptiveRate``: the LLM's rate, learnt from its 429s (slow start, then AIMD; a
  ``Retry-After`` pauses every caller); it sits inside the cached call, so an answer found in
  the cache spends no token of the LLM's rate;
- ``ss.Cache(sqlite_path=...)`` + ``@ss.cached(name=..., exclude=("client",))``: the LLM
  answer cache, keyed by the whole request (model, temperature, schema, text), kept across
  restarts; concurrent items with the same prompt share one call;
- ``ss.Retry`` on the stages: 429s (waiting the server's ``Retry-After``) and transient errors;
- ``ss.asyncpg_flush`` with ``setup=`` DDL: the table is created before the first item, rows
  are upserted in batches, each batch once; ``ss.Pipeline`` streams it all and reports every
  item that failed, with its error.

Run it: ``python examples/docpipeline/run.py --documents 40 --database-url URL`` (starts a local
parse service and LLM emulator unless ``--parse-url`` / ``--llm-url`` point at real ones).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import slipstream as ss

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "annotation"))
import workload  # noqa: E402  (examples/ is not a package: the prompt and schema)

SCHEMA = workload.make_schemas(1)[0]  # {"topic": one of workload.TOPICS, "confidence": 0..1}
COLUMNS = ["doc_id", "topic", "confidence", "parsed"]


@dataclass(kw_only=True)
class Settings:
    """Where the services and the database are, and how hard to push them."""

    parse_url: str
    llm_url: str
    database_url: str
    cache_path: Path
    table: str = "doc_labels"
    model: str = "annotator"
    parse_concurrency: int = 32
    llm_concurrency: int = 8
    llm_initial_per_s: float = 10.0  # where the adaptive rate starts; it finds the limit itself
    poll_initial_s: float = 0.05
    poll_max_interval_s: float = 1.0
    poll_deadline_s: float = 60.0
    batch_size: int = 50
    checkpoint: str | None = None
    run_id: str = "docpipeline"


@dataclass
class Instruments:
    """The shared primitives of one run, for their statistics afterwards."""

    poller: ss.Poller
    limiter: ss.AdaptiveRate
    cache: ss.Cache
    llm_calls: int = 0  # requests that reached the LLM (cache misses, their retries included)

    def summary(self) -> dict[str, Any]:
        polls, rate = self.poller.statistics(), self.limiter.statistics()
        return {
            "llm_calls": self.llm_calls,
            "polls": polls.polls,
            "not_ready": polls.not_ready,
            "poll_server_waits": polls.server_waits,
            "poll_transient_retries": polls.transient_retries,
            "llm_rate_per_s": round(rate.rate_per_s, 2),
            "llm_throttles": rate.throttles,
            "llm_rate_cuts": rate.decreases,
            "cache_hits": self.cache.statistics().hits,
        }


def make_documents(n: int) -> list[dict[str, str]]:
    """``n`` small HTML documents, ``{"id", "body"}``; the parse service extracts their text."""
    topics = workload.TOPICS
    return [
        {
            "id": f"doc-{i:04d}",
            "body": (
                f"<html><h1>Report {i}</h1><p>A note on {topics[i % len(topics)]}: "
                + " ".join(f"{topics[i % len(topics)]}-term-{(i * 7 + j) % 97}" for j in range(12))
                + "</p></html>"
            ),
        }
        for i in range(n)
    ]


def ddl(table: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (doc_id text PRIMARY KEY, topic text NOT NULL, "
        "confidence double precision NOT NULL, parsed text NOT NULL)"
    )


def build(
    settings: Settings,
    documents: list[dict[str, str]],
    *,
    registry: ss.Registry,
    cache: ss.Cache,
) -> tuple[ss.Pipeline[dict[str, str]], Instruments]:
    """The pipeline: documents -> parse (upload, poll) -> classify (cached LLM) -> table."""
    poller = ss.Poller(
        initial_s=settings.poll_initial_s,
        max_interval_s=settings.poll_max_interval_s,
        deadline_s=settings.poll_deadline_s,
        retry=ss.Retry(attempts=4, initial_s=0.02, deadline_s=10),  # 503s and resets on a GET
    )
    limiter = ss.AdaptiveRate(settings.llm_initial_per_s)
    tools = Instruments(poller=poller, limiter=limiter, cache=cache)

    async def parse_client() -> httpx.AsyncClient:
        return await registry.get("parse", lambda: httpx.AsyncClient(base_url=settings.parse_url))

    async def parse(doc: dict[str, str], client: httpx.AsyncClient) -> str:
        submitted = await client.post("/jobs", json={"document": doc["body"]})
        submitted.raise_for_status()
        job_id = submitted.json()["id"]

        async def check() -> httpx.Response:
            response = await client.get(f"/jobs/{job_id}")
            response.raise_for_status()  # a 503: a transient error, retried by the poller
            return response  # a 202 carries Retry-After, which the poll honours

        final = await poller.poll(check, done=lambda r: r.json()["status"] == "done")
        return str(final.json()["result"])

    async def llm_client() -> httpx.AsyncClient:
        async def connect() -> httpx.AsyncClient:
            client = httpx.AsyncClient(base_url=settings.llm_url, timeout=30.0)
            try:  # a wrong URL fails the run in setup, before any item
                (await client.get("/v1/models")).raise_for_status()
            except BaseException:
                await client.aclose()
                raise
            return client

        return await registry.get("llm", connect)

    # the key is the prompt, the whole request: everything the answer depends on is in it.
    # The rate is taken here, inside the cached call: a cached answer costs no token.
    @ss.cached(cache, name="docpipeline.llm.complete", exclude=("client",))
    async def complete(prompt: str, client: httpx.AsyncClient) -> str:
        tools.llm_calls += 1
        async with limiter:  # waits for the rate; tells it how the call went (429: a cut)
            response = await client.post(
                "/v1/chat/completions",
                content=prompt,
                headers={"content-type": "application/json"},
            )
            response.raise_for_status()  # a 429 raises with its Retry-After: the stage retries
        return str(response.json()["choices"][0]["message"]["content"])

    async def classify(text: str, client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
        prompt = json.dumps(workload.prompt(text, SCHEMA, settings.model), sort_keys=True)
        return text, json.loads(await complete(prompt, client))

    def row(item: ss.Item, value: tuple[str, dict[str, Any]]) -> tuple[str, str, float, str]:
        text, answer = value
        return item.key, str(answer["topic"]), float(answer["confidence"]), text

    def make_pool() -> Any:
        import asyncpg

        create = lambda: asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)  # noqa: E731
        return registry.get("db", create)

    sink = ss.asyncpg_flush(
        make_pool,
        settings.table,
        COLUMNS,
        conflict=["doc_id"],
        setup=lambda conn: conn.execute(ddl(settings.table)),
        close_pool=False,  # the registry's
    )
    pipeline = ss.Pipeline(
        documents,
        [
            ss.Stage(
                parse,
                setup=parse_client,
                concurrency=settings.parse_concurrency,
                retry=ss.Retry(attempts=3, initial_s=0.05),  # the upload's transient errors
            ),
            ss.Stage(
                classify,
                setup=llm_client,
                concurrency=settings.llm_concurrency,
                # 429s wait the server's Retry-After (no budget spent), 5xx back off
                retry=ss.Retry(attempts=8, initial_s=0.05, max_backoff_s=1.0),
            ),
        ],
        sink,
        key=lambda doc: doc["id"],
        row=row,
        checkpoint=settings.checkpoint,
        run_id=settings.run_id,
        batch_size=settings.batch_size,
        registry=registry,
        name="docpipeline",
    )
    return pipeline, tools


async def process(
    settings: Settings, documents: list[dict[str, str]], *, progress: bool = False
) -> tuple[ss.RunReport, Instruments]:
    """One run (one process's worth): its own registry and its own Cache over the SQLite file."""
    cache = ss.Cache(sqlite_path=settings.cache_path, ttl_s=None)  # kept until evicted
    try:
        async with ss.Registry("docpipeline") as registry:
            pipeline, tools = build(settings, documents, registry=registry, cache=cache)
            report = await pipeline.run(progress=progress)
            if pipeline.checkpoint is not None:
                await pipeline.checkpoint.aclose()
    finally:
        await cache.aclose()
    return report, tools
