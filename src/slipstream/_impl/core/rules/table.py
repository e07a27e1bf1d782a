"""The rules themselves: one ``Rule`` per finding the scanner and the runtime detectors report.

A table of prose (what each rule finds, why it costs time, the code it reports and the same code
fixed); its length is its content, which is why it is its own module.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from .rule import Rule, Severity

__all__ = ["RULES"]

_KNOWLEDGE = {
    "client": (
        "constructors of expensive clients, pools or providers",
        '["acme.storage.StorageClient"]',
    ),
    "invariant": (
        "functions whose result depends only on their arguments and is costly to compute",
        '["app.schemas.compile_schema"]',
    ),
    "query": (
        "functions or methods (`pkg.mod.Class.method`) that read from a database or a service",
        '["app.repo.fetch_user"]',
    ),
    "write": ("functions or methods that write one row or document", '["app.audit.record_event"]'),
    "commit": ("functions or methods that commit a transaction", '["app.db.commit_all"]'),
    "blocking": (
        "sync functions or methods that block (I/O, sleeps, heavy CPU)",
        '["legacy.ftp.download"]',
    ),
}

_THRESHOLD = {
    "high": 'reported at every `min-severity`, `"high"` included',
    "medium": 'reported unless `min-severity = "high"`',
    "low": 'reported only at `min-severity = "low"`, the default',
}


def _options(code: str, name: str, severity: Severity, knowledge: Sequence[str]) -> str:
    lines = [
        f'- `select` / `ignore` in `[tool.slipstream.scan]` (`--select` / `--ignore`): `"{code}"` '
        f'or `"{name}"`.',
        f"- `min-severity` (`--min-severity`): this rule is `{severity}`, {_THRESHOLD[severity]}.",
        "- `exclude` (`--exclude GLOB`): files not scanned, on top of the default excludes.",
    ]
    for key in knowledge:
        what, sample = _KNOWLEDGE[key]
        lines.append(
            f"- `{key}` in `[tool.slipstream.scan.knowledge]`: dotted names of {what}, added to "
            f"the API table (`{key} = {sample}`)."
        )
    lines.append(
        f"- `# noqa: {code}` (or `# noqa: {name}`) on the reported line suppresses one finding."
    )
    return "\n".join(lines)


def _code(text: str) -> str:
    return textwrap.dedent(text).strip("\n") + "\n"


def _rule(
    code: str,
    name: str,
    severity: Severity,
    family: str,
    *,
    summary: str,
    fix: str,
    why: str,
    example: str,
    fixed: str,
    knowledge: Sequence[str] = (),
) -> Rule:
    return Rule(
        code=code,
        name=name,
        severity=severity,
        summary=summary,
        fix=fix,
        why=why,
        example=_code(example),
        fixed=_code(fixed),
        options=_options(code, name, severity, knowledge),
        family=family,
    )


# Severity: "high" costs a round trip, a handshake or a stalled event loop per item or request
# (N+1 queries, a client per item, per-item commits, blocking the loop). "medium" costs as much
# but less often or only under load (a client per request, row-by-row writes, sequential awaits,
# an unbounded gather, a task that can vanish, a racy lazy init). invariant-in-loop is "low":
# it wastes CPU (micro- to milliseconds per iteration) but makes no round trip, and hoisting it
# is a refactor, not a fix of a failure mode. unbounded-cache is "medium": in a long-lived
# server it is a memory leak that ends with the worker killed for memory, and it serves stale
# entries forever; its cost is not per item, so it is not "high".
RULES: tuple[Rule, ...] = (
    _rule(
        "SLP101",
        "client-in-loop",
        "high",
        "clients",
        summary=(
            "An expensive client, pool or provider (HTTP, database engine, object storage, LLM "
            "SDK) constructed inside a loop, directly or through a helper that constructs one."
        ),
        fix=(
            "Create the client once: hoist it above the loop, get it from `ss.Registry`, or "
            "build it in `ss.Stage(setup=)`."
        ),
        why=(
            "A new client brings no connection with it: its first request resolves DNS, opens a "
            "TCP connection and does a TLS handshake (tens to hundreds of milliseconds), and "
            "many SDKs also load credentials or check a bucket. Built per item, every iteration "
            "pays that again and throws away the connection pool that would have let the next "
            "request reuse a warm connection; clients left unclosed hold sockets until the "
            "garbage collector finds them. Seed 000 built a storage client per asset: "
            "200-500 ms each before any work."
        ),
        example="""
            import boto3

            def upload_reports(paths):
                for path in paths:
                    s3 = boto3.client("s3")
                    s3.upload_file(str(path), "reports", path.name)
        """,
        fixed="""
            import boto3

            import slipstream as ss

            def upload_reports(paths):
                # boto3.client("s3") runs once per process; every later call reuses it
                s3 = ss.default_registry().get_sync("s3", boto3.client, "s3")
                for path in paths:
                    s3.upload_file(str(path), "reports", path.name)
        """,
        knowledge=["client"],
    ),
    _rule(
        "SLP102",
        "client-per-call",
        "medium",
        "clients",
        summary=(
            "An expensive client constructed on every call of a function that is called often: "
            "a request handler, a task, or a function mapped over items."
        ),
        fix=(
            "Create the client once per process with `ss.Registry` "
            "(`await registry.get(name, factory, settings)`) and reuse it."
        ),
        why=(
            "A handler runs once per request, so a client built inside it pays a DNS lookup, a "
            "TCP connect and a TLS handshake on every request and never reuses a keep-alive "
            "connection. Under load that is added latency on every request, thousands of "
            "sockets in TIME_WAIT and, for database pools, a storm of new connections against "
            "the server. A module global avoids the cost but is shared across event loops and "
            "never closed; a registry creates one client per settings and event loop, under "
            "single flight, and closes it at shutdown."
        ),
        example="""
            import httpx
            from fastapi import FastAPI

            app = FastAPI()

            @app.get("/weather/{city}")
            async def weather(city: str):
                async with httpx.AsyncClient(base_url="https://api.weather.example") as client:
                    response = await client.get("/current", params={"city": city})
                return response.json()
        """,
        fixed="""
            from contextlib import asynccontextmanager

            import httpx
            from fastapi import FastAPI

            import slipstream as ss

            registry = ss.Registry()

            def make_client(base_url: str) -> httpx.AsyncClient:
                return httpx.AsyncClient(base_url=base_url)

            @asynccontextmanager
            async def lifespan(app):
                async with registry:  # closes every client it made at shutdown
                    yield

            app = FastAPI(lifespan=lifespan)

            @app.get("/weather/{city}")
            async def weather(city: str):
                # one client per base URL and event loop, made on first use
                client = await registry.get("weather", make_client, "https://api.weather.example")
                response = await client.get("/current", params={"city": city})
                return response.json()
        """,
        knowledge=["client"],
    ),
    _rule(
        "SLP103",
        "invariant-in-loop",
        "low",
        "clients",
        summary=(
            "Known-expensive work whose inputs do not change inside the loop: compiling a "
            "schema validator or a pydantic model, parsing settings or a config file, "
            "loading a template or a tokenizer."
        ),
        fix="Hoist it above the loop (or to module level), or build it once in `ss.Stage(setup=)`.",
        why=(
            "The result is the same on every iteration, so every computation after the first "
            "is wasted: building a jsonschema validator or a pydantic model from a schema costs "
            "milliseconds, loading a YAML config opens and parses a file, and `BaseSettings()` "
            "reads the environment and the `.env` file again. Over 10,000 items that is seconds "
            "of CPU, spent on the event loop or in the worker that should be doing the items. "
            "Seed 000 compiled every schema once per asset."
        ),
        example="""
            import jsonschema

            def invalid_records(records, schema):
                errors = []
                for record in records:
                    validator = jsonschema.Draft202012Validator(schema)
                    errors.extend(e.message for e in validator.iter_errors(record))
                return errors
        """,
        fixed="""
            import jsonschema

            import slipstream as ss

            def invalid_records(records, schema):
                validator = jsonschema.Draft202012Validator(schema)  # once, before the loop
                errors = []
                for record in records:
                    errors.extend(e.message for e in validator.iter_errors(record))
                return errors

            # in a pipeline, the stage's setup builds it once per run: fn(value, context)
            def check(record, validator):
                return [e.message for e in validator.iter_errors(record)]

            def stage_for(schema):
                return ss.Stage(check, setup=lambda: jsonschema.Draft202012Validator(schema))
        """,
        knowledge=["invariant"],
    ),
    _rule(
        "SLP201",
        "query-in-loop",
        "high",
        "queries",
        summary=(
            "One database or remote lookup per item of a loop (the N+1 pattern), directly or "
            "through a helper that queries."
        ),
        fix=(
            "Load all the keys at once: `ss.DataLoader` (async), `ss.prefetch` (sync), or one "
            "`WHERE id IN (...)` query."
        ),
        why=(
            "Each lookup is a round trip to the database (0.2-2 ms on a local network, more "
            "across zones) plus the server parsing and planning the statement, so N items cost "
            "N round trips where one `IN` query would do. The cost grows with the data: a page "
            "of 50 users with a role check each is 51 queries, and a nightly job over 10,000 "
            "rows makes 10,000. A helper such as `get_user(id)` hides the query from review; "
            "the scanner follows the call and shows the chain."
        ),
        example="""
            from sqlalchemy.orm import Session

            from app.models import Role, User

            def admins(session: Session, user_ids: list[int]) -> list[User]:
                found = []
                for user_id in user_ids:
                    user = session.get(User, user_id)
                    if user is not None and user.role == Role.ADMIN:
                        found.append(user)
                return found
        """,
        fixed="""
            from sqlalchemy import select
            from sqlalchemy.orm import Session

            import slipstream as ss
            from app.models import Role, User

            def admins(session: Session, user_ids: list[int]) -> list[User]:
                def users_by_id(ids):  # one SELECT ... WHERE id IN (...) per 500 ids
                    return session.scalars(select(User).where(User.id.in_(ids))).all()

                users = ss.prefetch(user_ids, users_by_id, key=lambda user: user.id)
                return [u for u in users.values() if u.role == Role.ADMIN]
        """,
        knowledge=["query"],
    ),
    _rule(
        "SLP202",
        "write-in-loop",
        "medium",
        "queries",
        summary=(
            "One INSERT, UPDATE or DELETE (or `insert_one`, `.save()`, `session.flush()`) per "
            "item of a loop."
        ),
        fix=(
            "Buffer the rows in `ss.BatchWriter` / `ss.SyncBatchWriter` (one multi-row write "
            "per batch), or use the driver's bulk API."
        ),
        why=(
            "Every statement is a round trip, and for the database a separate statement to "
            "execute and log, so 10,000 rows written one by one cost 10,000 round trips where "
            "batches of 500 cost 20; a multi-row insert or COPY is commonly 10-100x faster. "
            "Row-by-row writes also keep the transaction, and its locks, open longer. "
            "`session.add()` alone is not reported: it makes no round trip until the flush."
        ),
        example="""
            import asyncpg

            async def save_scores(conn: asyncpg.Connection, scores):
                for score in scores:
                    await conn.execute(
                        "INSERT INTO score (user_id, value) VALUES ($1, $2)",
                        score.user_id,
                        score.value,
                    )
        """,
        fixed="""
            import asyncpg

            import slipstream as ss

            async def save_scores(pool: asyncpg.Pool, scores):
                flush = ss.asyncpg_flush(pool, "score", ["user_id", "value"])  # COPY per batch
                async with ss.BatchWriter(flush, batch_size=500) as writer:
                    for score in scores:
                        await writer.add({"user_id": score.user_id, "value": score.value})
        """,
        knowledge=["write"],
    ),
    _rule(
        "SLP203",
        "commit-in-loop",
        "high",
        "queries",
        summary="A commit per item of a loop, directly or through a helper that commits.",
        fix=(
            "Commit once after the loop, or write through `ss.BatchWriter` / "
            "`ss.SyncBatchWriter` (one transaction per batch)."
        ),
        why=(
            "A commit is a round trip that waits for the database to flush its log to disk, "
            "commonly 1-10 ms, so committing per row caps a job at a few hundred rows a second "
            "whatever the hardware. With SQLAlchemy's defaults each commit also expires the "
            "session's objects, so the next attribute access loads them again. A failure "
            "halfway leaves some items committed and others not, with no record of which. "
            "Seed 004 committed once per gene."
        ),
        example="""
            from sqlalchemy.orm import Session

            from app.models import Gene

            def save_gene(session: Session, gene: Gene) -> None:
                session.add(gene)
                session.commit()

            def annotate_all(session: Session, genes: list[Gene]) -> None:
                for gene in genes:
                    gene.summary = summarize(gene)
                    save_gene(session, gene)
        """,
        fixed="""
            from sqlalchemy.orm import sessionmaker

            import slipstream as ss
            from app.models import Gene

            def annotate_all(make_session: sessionmaker, genes: list[Gene]) -> None:
                flush = ss.sqlalchemy_flush(make_session, Gene, conflict=["id"])
                with ss.SyncBatchWriter(flush, batch_size=500) as writer:  # a commit per 500
                    for gene in genes:
                        row = {"id": gene.id, "symbol": gene.symbol, "summary": summarize(gene)}
                        writer.add(row)
        """,
        knowledge=["commit"],
    ),
    _rule(
        "SLP301",
        "await-in-loop",
        "medium",
        "concurrency",
        summary=(
            "Awaits of independent I/O (HTTP, LLM and other remote calls, a DataLoader's "
            "`load`) made one after another in a `for` loop."
        ),
        fix=(
            "Run the calls concurrently with a bound: `await ss.map(fn, items, concurrency=N)`, "
            "or `ss.stream` to handle results as they finish; for a DataLoader, "
            "`await loader.load_many(keys)`."
        ),
        why=(
            "Each iteration waits for its response before the next request is even sent, so "
            "the loop takes the sum of all latencies: 100 calls of 200 ms take 20 s, where 20 "
            "at a time take about 1 s, and the event loop sits idle meanwhile. Loops whose "
            "iterations depend on each other (a cursor carried to the next page, a `break` on "
            "a result, a throttle, a lock) are not reported. `ss.map` bounds concurrency, "
            "applies a rate limit and retries, and returns one outcome per item, so no failure "
            "is lost. A DataLoader (`ss.DataLoader`, aiodataloader's, strawberry's) awaited per "
            "item is the same mistake: it batches only the loads made concurrently, so each "
            "iteration waits for a batch of one key, one query per item and slower than no "
            "loader; `load_many(keys)` makes one batch (at run time `ss.DataLoader` warns "
            "with `ss.SequentialLoadWarning`)."
        ),
        example="""
            import httpx

            async def fetch_profiles(client: httpx.AsyncClient, user_ids):
                profiles = []
                for user_id in user_ids:
                    response = await client.get(f"/users/{user_id}")
                    profiles.append(response.json())
                return profiles
        """,
        fixed="""
            import httpx

            import slipstream as ss

            async def fetch_profiles(client: httpx.AsyncClient, user_ids):
                async def fetch(user_id):
                    response = await client.get(f"/users/{user_id}")
                    response.raise_for_status()
                    return response.json()

                results = await ss.map(fetch, user_ids, concurrency=20, retry=ss.Retry(attempts=3))
                return results.values()  # input order; raises FailedItems if any item failed
        """,
    ),
    _rule(
        "SLP302",
        "unbounded-gather",
        "medium",
        "concurrency",
        summary=(
            "`asyncio.gather(*[... for x in items])` over a collection of unknown size, with "
            "nothing bounding how many calls run at once."
        ),
        fix=(
            "Bound it: `await ss.map(fn, items, concurrency=N)`, with "
            "`rate=ss.Rate(per_second=...)` for an API's limit."
        ),
        why=(
            "`gather` starts every coroutine at once: 10,000 items are 10,000 concurrent "
            "requests, which exhaust the connection pool (httpx then queues them until "
            "`PoolTimeout`), turn a rate limit into a wall of 429s, or open more sockets than "
            "the process may have. Memory grows with the input, since every task and its "
            "result live until the end. Without `return_exceptions=True`, the first error is "
            "raised while the other calls keep running with no one watching them."
        ),
        example="""
            import asyncio

            from openai import AsyncOpenAI

            async def embed_all(client: AsyncOpenAI, documents: list[str]):
                return await asyncio.gather(
                    *[client.embeddings.create(model="text-embedding-3-small", input=doc)
                      for doc in documents]
                )
        """,
        fixed="""
            from openai import AsyncOpenAI

            import slipstream as ss

            async def embed_all(client: AsyncOpenAI, documents: list[str]):
                async def embed(doc):
                    return await client.embeddings.create(model="text-embedding-3-small", input=doc)

                rate = ss.Rate(per_second=50)  # the API's limit
                results = await ss.map(embed, documents, concurrency=16, rate=rate)
                return results.values()
        """,
    ),
    _rule(
        "SLP401",
        "blocking-in-async",
        "high",
        "event-loop",
        summary=(
            "Blocking I/O (files, sync HTTP or database drivers, subprocesses, `time.sleep`) "
            "or heavy CPU work reached on the event loop from an `async def`, directly or "
            "through sync helpers."
        ),
        fix=(
            "Move it off the loop with `await ss.offload(fn, *args)` or `@ss.nonblocking`, or "
            "use an async driver (httpx.AsyncClient, asyncpg, AsyncSession)."
        ),
        why=(
            "An event loop runs one thing at a time: while a coroutine sits in `requests.get` "
            "or `time.sleep`, no other request on that process makes progress, timers fire "
            "late and health checks time out. A 200 ms sync call in a handler adds up to "
            "200 ms to every request in flight on that worker, not only to its own. The call "
            "is often a sync helper or two down (`geocode()` calling `requests.get`), which "
            "per-function linters cannot see; the scanner follows the chain. `ss.LoopWatch` "
            "measures the lag at run time and names the blocking line."
        ),
        example="""
            import requests
            from fastapi import FastAPI

            from app.schemas import Order

            app = FastAPI()

            def geocode(address: str) -> dict:
                response = requests.get("https://geo.example/search", params={"q": address})
                return response.json()

            @app.post("/orders")
            async def create_order(order: Order):
                location = geocode(order.address)
                return {"id": order.id, "location": location}
        """,
        fixed="""
            import requests
            from fastapi import FastAPI

            import slipstream as ss
            from app.schemas import Order

            app = FastAPI()

            def geocode(address: str) -> dict:
                response = requests.get("https://geo.example/search", params={"q": address})
                return response.json()

            @app.post("/orders")
            async def create_order(order: Order):
                location = await ss.offload(geocode, order.address)  # in a worker thread
                return {"id": order.id, "location": location}
        """,
        knowledge=["blocking"],
    ),
    _rule(
        "SLP501",
        "unbounded-cache",
        "medium",
        "state",
        summary=(
            "A module-level, class-level or long-lived dict used as a cache (read, then filled "
            "under computed keys) that nothing ever bounds or evicts."
        ),
        fix=(
            "Use `ss.Cache(max_entries=..., ttl_s=...)`, or decorate the function with "
            "`@ss.cached(ttl_s=..., max_entries=...)`."
        ),
        why=(
            "Every new key stays for the life of the process: in a server the dict grows with "
            "the number of distinct users, URLs or documents ever seen, until the worker is "
            "killed for memory. Entries never expire, so a changed row is served stale until "
            "the next restart. And concurrent misses of one key each compute the value, so a "
            "cold cache sends a stampede to the backend it was meant to protect."
        ),
        example="""
            from app.db import load_profile

            _profile_cache: dict[int, dict] = {}

            def profile(user_id: int) -> dict:
                if user_id not in _profile_cache:
                    _profile_cache[user_id] = load_profile(user_id)
                return _profile_cache[user_id]
        """,
        fixed="""
            import slipstream as ss
            from app.db import load_profile

            @ss.cached(ttl_s=300, max_entries=10_000)  # bounded, expiring, single flight
            def profile(user_id: int) -> dict:
                return load_profile(user_id)
        """,
    ),
    _rule(
        "SLP502",
        "dangling-task",
        "medium",
        "state",
        summary=(
            "The task made by `asyncio.create_task` / `ensure_future` is not kept anywhere "
            "(fire-and-forget)."
        ),
        fix="Own background tasks with `ss.TaskSet` (`await tasks.spawn(coro)`), drained at exit.",
        why=(
            "The event loop keeps only a weak reference to a task, so a task nobody references "
            "can be garbage-collected mid-flight and simply stop, with no error (the asyncio "
            "documentation warns about this). If it fails, its exception surfaces at best as "
            "'Task exception was never retrieved' in a log, and at shutdown it is cancelled "
            "half done. Nothing bounds how many pile up under load."
        ),
        example="""
            import asyncio

            from app.mail import notify_owner
            from app.storage import store

            async def handle_upload(upload):
                path = await store(upload)
                asyncio.create_task(notify_owner(upload.owner, path))
                return {"path": path}
        """,
        fixed="""
            import slipstream as ss
            from app.mail import notify_owner
            from app.storage import store

            background = ss.TaskSet(limit=100, name="notifications")

            async def handle_upload(upload):
                path = await store(upload)
                await background.spawn(notify_owner(upload.owner, path))  # kept and watched
                return {"path": path}

            async def shutdown():
                await background.drain(timeout_s=10)
        """,
    ),
    _rule(
        "SLP503",
        "lazy-init-race",
        "medium",
        "state",
        summary=(
            "Shared state checked and then created across an `await`, with no lock or single "
            "flight, so two concurrent callers both create it."
        ),
        fix=(
            "Create it through `ss.Registry` (single flight per key), or `ss.Cache.get_or_load` "
            "/ `@ss.cached` for computed values."
        ),
        why=(
            "While the first caller awaits the creation (a connection pool, an index build, a "
            "remote fetch), the event loop runs other tasks, and each one that checks "
            "`self.pool is None` still sees None and starts a creation of its own. The result "
            "is duplicate pools or clients, all but the last never closed, or the same index "
            "built twice at once. It only happens under concurrency, so tests with one caller "
            "pass."
        ),
        example="""
            import asyncpg

            class Database:
                def __init__(self, dsn: str) -> None:
                    self.dsn = dsn
                    self.pool: asyncpg.Pool | None = None

                async def get_pool(self) -> asyncpg.Pool:
                    if self.pool is None:
                        self.pool = await asyncpg.create_pool(self.dsn)
                    return self.pool
        """,
        fixed="""
            import asyncpg

            import slipstream as ss

            async def make_pool(dsn: str) -> asyncpg.Pool:
                return await asyncpg.create_pool(dsn)

            class Database:
                def __init__(self, dsn: str, registry: ss.Registry) -> None:
                    self.dsn = dsn
                    self.registry = registry

                async def get_pool(self) -> asyncpg.Pool:
                    # one creation however many callers ask at once; closed with the registry
                    return await self.registry.get("pg", make_pool, self.dsn)
        """,
    ),
)
