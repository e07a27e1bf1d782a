"""The "after": the same annotation job as one ``ss.Pipeline``.

- clients come from a registry: one object-store client, one HTTP client, one database pool,
  created once per run (``setup``), however many assets and schemas;
- every schema is compiled once, before any item; an invalid schema fails its own items with
  ``InvalidSchema`` while the others proceed;
- each asset is read once (a cache keyed by asset id), off the loop; a missing one is skipped;
- LLM calls run 32 at a time under the endpoint's rate limit, retry 429 (honouring
  ``Retry-After``), 5xx and answers that do not validate (the raw answer is kept when they
  stay invalid); a circuit breaker stops calling an endpoint that is down (measured: 19 calls
  instead of up to 1,200 for 300 items against an endpoint answering only 503), and the items it
  refused are failed, to be taken again with ``--retry-failed``;
- results are upserted in batches by a sink whose setup (the pool, the table's DDL) runs once
  per run before any item, and whose pool the registry closes; with a checkpoint the run can
  pause, be killed and resume.

Run alone: ``python examples/annotation/fast.py --endpoint URL --assets 500 --schemas 3``;
``--endpoint`` may point at any OpenAI-compatible server (a local model server, say).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import ssl
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import slipstream as ss

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import (
    COLUMNS,
    DDL,
    AssetMissing,
    InvalidSchema,
    ObjectStore,
    Result,
    S3Store,
    compile_schema,
    connect_store,
    is_postgres,
    prepare_db,
    prompt,
)


class AnswerInvalid(ValueError):
    """The model's answer does not validate against the schema; ``detail`` is the raw answer."""

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(message)
        self.detail = raw

    def __reduce__(self) -> tuple[Any, ...]:  # picklable: it travels back from Dask workers
        return (type(self), (str(self), self.detail))


@dataclass
class Settings:
    endpoint: str
    assets_dir: Path
    db: str
    handshake_s: float = 0.25
    concurrency: int = 32
    rate_per_s: float = 300.0
    attempts: int = 4  # per item: 429s, 5xx and invalid answers share them
    checkpoint: str | None = None
    run_id: str = "annotation"
    batch_size: int = 100
    runner: Any = None  # an ss.DaskRunner: the LLM stage runs on its workers
    model: str = "annotator"  # the model name a real OpenAI-compatible server serves
    storage: str | None = None  # s3://bucket/prefix?endpoint=URL: assets from S3, not assets_dir


@dataclass
class Counters:
    calls: int = 0
    timeline: list[tuple[float, float]] = field(default_factory=list)


class LLMClient:
    """The process's HTTP client for the endpoint: a few httpx clients used in turn.

    httpcore's pool rescans every connection against every waiting request on each request
    start and finish (encode/httpcore#1035), so one pool of 32 connections costs more CPU than
    the calls themselves; four pools of 8 cost a sixteenth of that scanning. One object, created
    once per process like any other client.
    """

    def __init__(self, endpoint: str, concurrency: int, shards: int = 4) -> None:
        per = max(1, -(-concurrency // shards))
        tls = ssl.create_default_context()  # loading the CA bundle costs 20 ms: do it once
        self.clients = [
            httpx.AsyncClient(
                base_url=endpoint,
                verify=tls,
                timeout=httpx.Timeout(30.0, connect=5.0),
                limits=httpx.Limits(max_connections=per, max_keepalive_connections=per),
            )
            for _ in range(shards)
        ]
        self._next = 0

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        self._next = (self._next + 1) % len(self.clients)
        return await self.clients[self._next].post(path, **kwargs)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


async def connect_llm(endpoint: str, concurrency: int) -> LLMClient:
    """The one LLM client of a process, checked against the endpoint (``/v1/models``)."""
    client = LLMClient(endpoint, concurrency)
    try:
        (await client.clients[0].get("/v1/models")).raise_for_status()
    except BaseException:
        await client.aclose()
        raise
    return client


def compile_all(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    """Every schema compiled once (hoisted out of the loop); an invalid one is kept as its
    error, which its items raise."""
    models: dict[str, Any] = {}
    for schema in schemas:
        try:
            models[schema["$id"]] = compile_schema(schema)
        except InvalidSchema as exc:
            models[schema["$id"]] = exc
    return {"models": models, "schemas": {s["$id"]: s for s in schemas}}


async def annotate_one(value: tuple[str, str, str], ctx: dict[str, Any]) -> dict[str, Any]:
    """One asset x schema: the LLM call, validated against the schema."""
    asset_id, schema_id, document = value
    model = ctx["models"][schema_id]
    if isinstance(model, Exception):
        raise model
    response = await ctx["client"].post(
        "/v1/chat/completions", json=prompt(document, ctx["schemas"][schema_id], ctx["model"])
    )
    response.raise_for_status()
    raw = response.json()["choices"][0]["message"]["content"]
    try:
        answer = model.model_validate_json(raw)
    except ValueError as exc:  # pydantic's ValidationError
        raise AnswerInvalid(f"answer does not match {schema_id}: {exc}", raw) from None
    label = json.dumps(answer.model_dump(), sort_keys=True)
    return Result(f"{asset_id}:{schema_id}", asset_id, schema_id, label).row()


async def remote_setup(
    endpoint: str, concurrency: int, schemas: list[dict[str, Any]], model: str
) -> Any:
    """``llm_setup`` on a Dask worker: the worker process's registry holds its one client."""
    client = await ss.default_registry().get(
        "llm", functools.partial(connect_llm, endpoint, concurrency)
    )
    return {"client": client, "model": model, **compile_all(schemas)}


def is_retryable(exc: BaseException) -> bool:
    return ss.is_transient(exc) or isinstance(exc, AnswerInvalid)


def is_outage(exc: BaseException) -> bool:
    """What the breaker counts: the endpoint failing (5xx, connection errors), not a 429 (the
    rate limit is working) and not an answer that does not validate (the model is up)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return ss.is_transient(exc) and status != 429


def build(
    settings: Settings,
    asset_ids: list[str],
    schemas: list[dict[str, Any]],
    *,
    registry: ss.Registry,
    counters: Counters,
    started: float,
) -> ss.Pipeline[tuple[str, str]]:
    """The pipeline: (asset, schema) pairs -> fetch -> classify -> annotations table."""
    documents = ss.Cache(max_entries=10_000)

    location = settings.storage or settings.assets_dir

    async def storage_setup() -> ObjectStore | S3Store:
        return await registry.get("storage", lambda: connect_store(location, settings.handshake_s))

    async def fetch(pair: tuple[str, str], storage: ObjectStore | S3Store) -> tuple[str, str, str]:
        asset_id, schema_id = pair
        try:
            document = await documents.get_or_load(asset_id, lambda: storage.get(asset_id))
        except AssetMissing as exc:
            raise ss.Skip(str(exc)) from None
        return asset_id, schema_id, document

    async def llm_setup() -> dict[str, Any]:
        connect = functools.partial(connect_llm, settings.endpoint, settings.concurrency)
        client = await registry.get("llm", connect)
        return {"client": client, "model": settings.model, **compile_all(schemas)}

    async def classify(value: tuple[str, str, str], ctx: dict[str, Any]) -> dict[str, Any]:
        if isinstance(ctx["models"][value[1]], Exception):
            return await annotate_one(value, ctx)  # an invalid schema: raises, no call
        counters.calls += 1
        t0 = time.perf_counter() - started
        try:
            return await annotate_one(value, ctx)
        finally:
            counters.timeline.append((t0, time.perf_counter() - started))

    retry = ss.Retry(
        attempts=settings.attempts,
        on=is_retryable,
        initial_s=0.05,
        max_backoff_s=2.0,
    )
    # the sink's lifecycle: the run makes the pool (once, through the registry, which owns
    # and closes it) and runs the DDL before any item, beside the stages' setups
    if is_postgres(settings.db):
        import asyncpg

        def make_pool() -> Any:
            create = lambda: asyncpg.create_pool(settings.db, min_size=1, max_size=4)  # noqa: E731
            return registry.get("db", create)

        flush: Any = ss.asyncpg_flush(
            make_pool,
            "annotations",
            COLUMNS,
            conflict=["key"],
            setup=lambda conn: conn.execute(DDL),
            close_pool=False,  # the registry's
        )
    else:
        flush = ss.sqlite_flush(
            settings.db,
            "annotations",
            COLUMNS,
            conflict=["key"],
            setup=lambda conn: conn.execute(DDL),
        )
    # a small burst absorbs timer lateness; the emulator allows 10
    rate = ss.Rate(per_second=settings.rate_per_s, burst=5) if settings.rate_per_s else None
    if settings.runner is None:
        llm = ss.Stage(
            classify,
            setup=llm_setup,
            concurrency=settings.concurrency,
            rate=rate,
            retry=retry,
            # 5 outage errors in a row: stop calling a down endpoint, probe it every 2 s; the
            # items refused meanwhile fail fast (CircuitOpen) and --retry-failed takes them later
            breaker=ss.CircuitBreaker(
                "llm", failure_threshold=5, reset_timeout_s=2.0, counts=is_outage
            ),
        )
    else:  # module-level functions: the workers import them by name
        setup = functools.partial(
            remote_setup, settings.endpoint, settings.concurrency, schemas, settings.model
        )
        llm = ss.Stage(
            annotate_one,
            name="classify",
            setup=setup,
            rate=rate,
            retry=retry,
            runner=settings.runner,
        )
    return ss.Pipeline(
        [(a, s["$id"]) for a in asset_ids for s in schemas],
        [ss.Stage(fetch, setup=storage_setup, concurrency=8, latency_s=0.001), llm],
        flush,
        key=lambda pair: f"{pair[0]}:{pair[1]}",
        checkpoint=settings.checkpoint,
        run_id=settings.run_id,
        batch_size=settings.batch_size,
        registry=registry,
        name="annotation",
    )


async def annotate(
    settings: Settings,
    asset_ids: list[str],
    schemas: list[dict[str, Any]],
    *,
    progress: bool = False,
    on_progress: Any = None,
    retry_failed: bool = False,
    handle_signals: bool = False,
) -> tuple[ss.RunReport, Counters]:
    """Run (or resume) the job; returns the pipeline's report and the call counters."""
    started = time.perf_counter()
    counters = Counters()
    await prepare_db(settings.db)  # a wrong database fails here with a plain ConnectionError
    async with ss.Registry("annotation") as registry:
        pipeline = build(
            settings, asset_ids, schemas, registry=registry, counters=counters, started=started
        )
        report = await pipeline.run(
            progress=progress,
            on_progress=on_progress,
            retry_failed=retry_failed,
            handle_signals=handle_signals,
        )
        if pipeline.checkpoint is not None:
            await pipeline.checkpoint.aclose()
    return report, counters


def main() -> None:
    from workload import make_assets, make_schemas

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--schemas", type=int, default=3)
    parser.add_argument("--data", default="demo-output/data")
    parser.add_argument("--db", default="demo-output/fast.sqlite")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--run-id", default="annotation")
    parser.add_argument("--retry-failed", action="store_true")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=300.0, help="calls per second; 0: none")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--runner", choices=["local", "dask"], default="local")
    parser.add_argument("--model", default="annotator", help="the model the endpoint serves")
    args = parser.parse_args()
    assets_dir = Path(args.data) / "assets"
    ids = [f"asset-{i:05d}" for i in range(args.assets)]
    if not (assets_dir / f"{ids[-1]}.txt").exists():
        make_assets(assets_dir, args.assets)
    settings = Settings(
        endpoint=args.endpoint,
        assets_dir=assets_dir,
        db=args.db,
        concurrency=args.concurrency,
        rate_per_s=args.rate,
        checkpoint=args.checkpoint,
        run_id=args.run_id,
        model=args.model,
        runner=ss.DaskRunner(concurrency_per_worker=args.concurrency // 2)
        if args.runner == "dask"
        else None,
    )
    report, counters = asyncio.run(
        annotate(
            settings,
            ids,
            make_schemas(args.schemas),
            progress=not args.quiet,
            retry_failed=args.retry_failed,
            handle_signals=True,
        )
    )
    print(json.dumps({**report.as_dict(), "calls": counters.calls}, default=str))


if __name__ == "__main__":
    main()
