"""Database batching on PostgreSQL (top level) and SQLite (under "sqlite"), side by side.

Figures (last line, JSON):
  naive_queries / loader_queries, naive_s / loader_s
      seed 001's validation lookup: 1,000 entries, each needing its person and that person's
      organisation; naive = one query per lookup (~2,000), loader = ss.DataLoader per level.
  loader_sequential_queries / loader_sequential_s / loader_sequential_warnings
      the same lookup through the same loaders awaited one entry at a time (the natural loop,
      `for e in entries: await loader.load(e)`): one query per key, and the
      ss.SequentialLoadWarning it gives (one per call site per loader: 2).
  per_row_commit_rows_per_s / batch_writer_rows_per_s / copy_rows_per_s
      rows written per second: one commit per row (seed 004's "before"), ss.BatchWriter, and
      one COPY (PostgreSQL; on SQLite one executemany in one transaction): the physical bound.
      batch_writer_over_per_row and batch_writer_over_copy are the goals' ratios.
  batch_writer_without_marker_rows_per_s, marker_cost
      the same writer with marker_table=None (no exactly-once marker), and the share of the
      writer's throughput the marker costs (1 - with / without).
  copy_kills / copy_duplicates_under_kills / copy_rows_missing_under_kills
      10,000 rows through ss.BatchWriter in COPY mode while a second connection terminates the
      writer's backend (pg_terminate_backend) 8 times, at random moments while it runs a
      statement (COPY, COMMIT, the pool's reset after COMMIT): backends terminated, rows
      written twice (count(*) - count(DISTINCT id), must be 0) and rows missing (must be 0).
  dataloader_us_per_key / aiodataloader_us_per_key
      CPU microseconds per key for 10,000 concurrent loads of a trivial batch function.
  batches_over_ideal / aiodataloader_batches_over_ideal
      batches made for 1,000 loads behind 0-3 unrelated awaits, over the ideal (1).
  dataloader_dispatch_us_{1_loader,2_loaders,4_loaders} / aiodataloader_dispatch_us_*
      median wall microseconds from one load per loader to every answer, with that many
      loaders pending at once (one per type); the 1-loader figure is the floor.
  dataloader_lock_batches / aiodataloader_lock_batches
      batches made by 200 loads behind a shared asyncio.Lock held across a yield (ideal 1).

Run: python benchmarks/bench_db.py --quick   (PostgreSQL on 127.0.0.1:5432, database test)
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from _common import PG_URL, parse_args, pg_up, report

import slipstream as ss

ENTRIES = 1000


# -- the lookup ------------------------------------------------------------------------------


async def lookup_pg(conn: Any) -> dict[str, float]:
    await conn.execute(
        "CREATE TEMP TABLE org (code text PRIMARY KEY, name text);"
        "CREATE TEMP TABLE person (id int PRIMARY KEY, name text, org_code text)"
    )
    await conn.executemany(
        "INSERT INTO org VALUES ($1, $2)", [(f"o{i}", f"O{i}") for i in range(50)]
    )
    await conn.executemany(
        "INSERT INTO person VALUES ($1, $2, $3)",
        [(i, f"P{i}", f"o{i % 50}") for i in range(ENTRIES)],
    )
    count = [0]

    async def naive() -> None:
        for i in range(ENTRIES):
            person = await conn.fetchrow("SELECT * FROM person WHERE id = $1", i)
            await conn.fetchrow("SELECT * FROM org WHERE code = $1", person["org_code"])
            count[0] += 2

    async def people(ids: list[int]) -> dict[int, Any]:
        count[0] += 1
        return {
            r["id"]: r for r in await conn.fetch("SELECT * FROM person WHERE id = ANY($1)", ids)
        }

    async def orgs(codes: list[str]) -> dict[str, Any]:
        count[0] += 1
        return {
            r["code"]: r for r in await conn.fetch("SELECT * FROM org WHERE code = ANY($1)", codes)
        }

    async def batched() -> None:
        p, o = ss.DataLoader(people), ss.DataLoader(orgs)

        async def one(i: int) -> None:
            person = await p.load(i)
            await o.load(person["org_code"])

        await asyncio.gather(*(one(i) for i in range(ENTRIES)))

    async def sequential() -> None:
        p, o = ss.DataLoader(people), ss.DataLoader(orgs)
        for i in range(ENTRIES):
            person = await p.load(i)
            await o.load(person["org_code"])

    t0 = time.perf_counter()
    await naive()
    naive_s, naive_q = time.perf_counter() - t0, count[0]
    count[0] = 0
    t0 = time.perf_counter()
    await batched()
    loader_s, loader_q = time.perf_counter() - t0, count[0]
    count[0] = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ss.SequentialLoadWarning)
        t0 = time.perf_counter()
        await sequential()
        sequential_s = time.perf_counter() - t0
    return {
        "naive_queries": naive_q,
        "loader_queries": loader_q,
        "naive_s": naive_s,
        "loader_s": loader_s,
        "loader_sequential_queries": count[0],
        "loader_sequential_s": sequential_s,
        "loader_sequential_warnings": sum(
            issubclass(w.category, ss.SequentialLoadWarning) for w in caught
        ),
    }


def lookup_sqlite(path: Path) -> dict[str, float]:
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE org (code TEXT PRIMARY KEY, name TEXT);"
        "CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT, org_code TEXT);"
    )
    conn.executemany("INSERT INTO org VALUES (?, ?)", [(f"o{i}", f"O{i}") for i in range(50)])
    conn.executemany(
        "INSERT INTO person VALUES (?, ?, ?)", [(i, f"P{i}", f"o{i % 50}") for i in range(ENTRIES)]
    )
    conn.commit()
    queries: list[str] = []
    conn.set_trace_callback(queries.append)
    t0 = time.perf_counter()
    for i in range(ENTRIES):  # the naive N+1 this benchmark measures, on purpose
        person = conn.execute("SELECT * FROM person WHERE id = ?", (i,)).fetchone()  # noqa: SLP201
        conn.execute("SELECT * FROM org WHERE code = ?", (person[2],)).fetchone()  # noqa: SLP201
    naive_s, naive_q = time.perf_counter() - t0, len(queries)
    queries.clear()

    def fetch(table: str, key: str, keys: list[Any]) -> dict[Any, Any]:
        marks = ",".join("?" * len(keys))
        # an in-memory SQLite read: microseconds, kept on the loop to time dispatch alone
        rows = conn.execute(f"SELECT * FROM {table} WHERE {key} IN ({marks})", keys)  # noqa: SLP401
        return {r[0]: r for r in rows}

    async def people(ids: list[int]) -> dict[Any, Any]:
        return fetch("person", "id", ids)

    async def orgs(codes: list[str]) -> dict[Any, Any]:
        return fetch("org", "code", codes)

    async def batched() -> None:
        p, o = ss.DataLoader(people, batch_size=900), ss.DataLoader(orgs, batch_size=900)

        async def one(i: int) -> None:
            person = await p.load(i)
            await o.load(person[2])

        await asyncio.gather(*(one(i) for i in range(ENTRIES)))

    t0 = time.perf_counter()
    asyncio.run(batched())
    loader_s = time.perf_counter() - t0
    conn.close()
    return {
        "naive_queries": naive_q,
        "loader_queries": len(queries),
        "naive_s": naive_s,
        "loader_s": loader_s,
    }


# -- writing ---------------------------------------------------------------------------------


async def writes_pg(rows: int, per_row: int) -> dict[str, float]:
    import asyncpg

    pool = await asyncpg.create_pool(PG_URL, min_size=2, max_size=4)
    table = f"bench_{uuid.uuid4().hex[:8]}"
    await pool.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, label text, score real)")
    data = [(i, f"label-{i % 17}", (i % 100) / 100) for i in range(rows)]
    try:
        t0 = time.perf_counter()
        async with pool.acquire() as conn:
            for rec in data[:per_row]:  # the per-row baseline, on purpose
                await conn.execute(f"INSERT INTO {table} VALUES ($1, $2, $3)", *rec)  # noqa: SLP202
        per_row_rate = per_row / (time.perf_counter() - t0)
        await pool.execute(f"TRUNCATE {table}")

        flush = ss.asyncpg_flush(pool, table, ["id", "label", "score"])
        bare = ss.asyncpg_flush(pool, table, ["id", "label", "score"], marker_table=None)

        async def writer_run(flush: Any = flush) -> float:
            t0 = time.perf_counter()
            async with ss.BatchWriter(flush, batch_size=20_000, max_pending=60_000) as w:
                await w.add_many(data)
            rate = rows / (time.perf_counter() - t0)
            await pool.execute(f"TRUNCATE {table}")
            return rate

        async def copy_run() -> float:
            t0 = time.perf_counter()
            async with pool.acquire() as conn:
                await conn.copy_records_to_table(
                    table, records=data, columns=["id", "label", "score"]
                )
            rate = rows / (time.perf_counter() - t0)
            await pool.execute(f"TRUNCATE {table}")
            return rate

        writer_rates, copy_rates, bare_rates = [], [], []
        for _ in range(3):  # alternate, so drift hits all alike; report medians
            writer_rates.append(await writer_run())
            copy_rates.append(await copy_run())
            bare_rates.append(await writer_run(bare))
        writer_rate, copy_rate = statistics.median(writer_rates), statistics.median(copy_rates)
        bare_rate = statistics.median(bare_rates)

        upsert = ss.asyncpg_flush(pool, table, ["id", "label", "score"], conflict=["id"])
        t0 = time.perf_counter()
        async with ss.BatchWriter(upsert, batch_size=2_000) as w:
            await w.add_many(data)
        upsert_rate = rows / (time.perf_counter() - t0)
    finally:
        await pool.execute(f"DROP TABLE IF EXISTS {table}")
        await pool.close()
    return {
        "per_row_commit_rows_per_s": per_row_rate,
        "batch_writer_rows_per_s": writer_rate,
        "batch_writer_upsert_rows_per_s": upsert_rate,
        "copy_rows_per_s": copy_rate,
        "batch_writer_over_per_row": writer_rate / per_row_rate,
        "batch_writer_over_copy": writer_rate / copy_rate,
        "batch_writer_without_marker_rows_per_s": bare_rate,
        "marker_cost": 1 - writer_rate / bare_rate,
    }


async def copy_under_kills(rows: int, kills: int) -> dict[str, int]:
    """COPY-mode BatchWriter while a second connection terminates its backend ``kills`` times:
    each time a random 0-30 ms (seeded) after the last, as soon as the backend is running a
    statement (COPY, COMMIT, or the pool's reset after COMMIT: the issue's window)."""
    import asyncpg

    application = f"bench_kills_{uuid.uuid4().hex[:8]}"
    table = f"bench_kills_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_URL)
    await admin.execute(f"CREATE TABLE {table} (id int, label text)")  # no key: twice shows
    pool = await asyncpg.create_pool(
        PG_URL, min_size=1, max_size=2, server_settings={"application_name": application}
    )
    patient = ss.Retry(
        attempts=100, on=ss.is_connection_error, initial_s=0.005, max_backoff_s=0.05, deadline_s=60
    )
    flush = ss.asyncpg_flush(pool, table, ["id", "label"], marker_table=f"{table}_marks")
    rnd, killed, unwritten, done = random.Random(8), [0], 0, asyncio.Event()

    async def killer() -> None:
        for _ in range(kills):
            await asyncio.sleep(rnd.uniform(0, 0.03))
            while not done.is_set():
                n = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = $1 AND state = 'active'",
                    application,
                )
                if n:
                    killed[0] += n
                    break

    task = asyncio.ensure_future(killer())
    try:
        try:
            async with ss.BatchWriter(flush, batch_size=500, retry=patient) as w:
                for i in range(0, rows, 100):
                    await w.add_many((j, "x") for j in range(i, min(rows, i + 100)))
                    await asyncio.sleep(0.003)
        except ss.FlushFailed as exc:
            unwritten = len(exc.rows)
        done.set()
        await task
        count, distinct = await admin.fetchrow(f"SELECT count(*), count(DISTINCT id) FROM {table}")
    finally:
        done.set()
        await pool.close()
        await admin.execute(f"DROP TABLE IF EXISTS {table}, {table}_marks")
        await admin.close()
    return {
        "kills": killed[0],
        "duplicates": count - distinct,
        "missing": rows - distinct,
        "unwritten": unwritten,
    }


def writes_sqlite(path: Path, rows: int, per_row: int) -> dict[str, float]:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE w (id INTEGER PRIMARY KEY, label TEXT, score REAL)")
    data = [(i, f"label-{i % 17}", (i % 100) / 100) for i in range(rows)]
    t0 = time.perf_counter()
    for rec in data[:per_row]:  # the per-row baseline, on purpose
        conn.execute("INSERT INTO w VALUES (?, ?, ?)", rec)  # noqa: SLP202
        conn.commit()  # noqa: SLP203
    per_row_rate = per_row / (time.perf_counter() - t0)
    conn.execute("DELETE FROM w")
    conn.commit()

    def flush(batch: list[tuple[Any, ...]]) -> None:
        with conn:
            conn.executemany("INSERT INTO w VALUES (?, ?, ?)", batch)

    t0 = time.perf_counter()
    with ss.SyncBatchWriter(flush, batch_size=10_000) as w:
        w.add_many(data)
    writer_rate = rows / (time.perf_counter() - t0)
    conn.execute("DELETE FROM w")
    conn.commit()
    t0 = time.perf_counter()
    with conn:
        conn.executemany("INSERT INTO w VALUES (?, ?, ?)", data)
    bound = rows / (time.perf_counter() - t0)
    conn.close()
    return {
        "per_row_commit_rows_per_s": per_row_rate,
        "batch_writer_rows_per_s": writer_rate,
        "copy_rows_per_s": bound,
        "batch_writer_over_per_row": writer_rate / per_row_rate,
        "batch_writer_over_copy": writer_rate / bound,
    }


# -- loaders ---------------------------------------------------------------------------------


def loader_cost(n: int) -> dict[str, float]:
    from aiodataloader import DataLoader as AioDataLoader

    async def batch(keys: list[int]) -> list[int]:
        return keys

    def cpu(make: Any) -> float:
        async def main() -> None:
            loader = make()
            await asyncio.gather(*(loader.load(i) for i in range(n)))

        t0 = time.process_time()
        asyncio.run(main())
        return (time.process_time() - t0) / n * 1e6

    def batches(make: Any) -> int:
        made = [0]

        async def counted(keys: list[int]) -> list[int]:
            made[0] += 1
            return keys

        async def main() -> None:
            loader = make(counted)

            async def one(i: int) -> int:
                for _ in range(i % 4):
                    await asyncio.sleep(0)
                return await loader.load(i)

            await asyncio.gather(*(one(i) for i in range(1000)))

        asyncio.run(main())
        return made[0]

    return {
        "dataloader_us_per_key": min(
            cpu(lambda: ss.DataLoader(batch, batch_size=100_000)) for _ in range(3)
        ),
        "aiodataloader_us_per_key": min(cpu(lambda: AioDataLoader(batch)) for _ in range(3)),
        "batches_over_ideal": batches(lambda f: ss.DataLoader(f)) / 1,
        "aiodataloader_batches_over_ideal": batches(lambda f: AioDataLoader(f)) / 1,
    }


def loader_dispatch(repeats: int) -> dict[str, float]:
    """How long one load per loader takes to come back, with 1, 2 and 4 loaders pending at once
    (one loader per type, the usual setup), and how many batches 200 loads behind a shared lock
    held across a yield make (the ideal is 1)."""
    from aiodataloader import DataLoader as AioDataLoader

    async def batch(keys: list[int]) -> list[int]:
        return keys

    def dispatch_us(make: Any, n_loaders: int) -> float:
        async def main() -> float:
            loaders = [make() for _ in range(n_loaders)]
            samples = []
            for i in range(repeats):
                t0 = time.perf_counter()
                await asyncio.gather(*(loader.load(i) for loader in loaders))
                samples.append(time.perf_counter() - t0)
            return statistics.median(samples) * 1e6

        return asyncio.run(main())

    def lock_batches(make: Any) -> int:
        made = [0]

        async def counted(keys: list[int]) -> list[int]:
            made[0] += 1
            return keys

        async def main() -> None:
            lock, loader = asyncio.Lock(), make(counted)

            async def one(i: int) -> int:
                async with lock:
                    await asyncio.sleep(0)
                return int(await loader.load(i))

            await asyncio.gather(*(one(i) for i in range(200)))

        asyncio.run(main())
        return made[0]

    ours = lambda: ss.DataLoader(batch, cache=False)  # noqa: E731  # a factory, named once
    peer = lambda: AioDataLoader(batch, cache=False)  # noqa: E731
    return {
        "dataloader_dispatch_us_1_loader": dispatch_us(ours, 1),
        "dataloader_dispatch_us_2_loaders": dispatch_us(ours, 2),
        "dataloader_dispatch_us_4_loaders": dispatch_us(ours, 4),
        "aiodataloader_dispatch_us_1_loader": dispatch_us(peer, 1),
        "aiodataloader_dispatch_us_4_loaders": dispatch_us(peer, 4),
        "dataloader_lock_batches": lock_batches(lambda f: ss.DataLoader(f)),
        "aiodataloader_lock_batches": lock_batches(lambda f: AioDataLoader(f)),
    }


def main() -> None:
    args = parse_args(__doc__ or "")
    rows = 100_000
    per_row = 2_000 if args.quick else 10_000
    figures: dict[str, Any] = {}
    print("loaders: CPU per key and batches behind unrelated awaits ...")
    loaders = loader_cost(10_000)
    print("loaders: dispatch with 1, 2 and 4 loaders pending, loads behind a lock ...")
    loaders |= loader_dispatch(2_000 if args.quick else 10_000)
    if pg_up():
        import asyncpg

        async def pg() -> dict[str, float]:
            conn = await asyncpg.connect(PG_URL)
            try:
                return await lookup_pg(conn)
            finally:
                await conn.close()

        print("PostgreSQL: lookup ...")
        figures |= asyncio.run(pg())
        print(f"PostgreSQL: writing {rows} rows ...")
        figures |= asyncio.run(writes_pg(rows, per_row))
        print("PostgreSQL: COPY while the writer's backend is terminated 8 times ...")
        killed = asyncio.run(copy_under_kills(10_000, 8))
        figures |= {
            "copy_kills": killed["kills"],
            "copy_duplicates_under_kills": killed["duplicates"],
            "copy_rows_missing_under_kills": killed["missing"],
        }
    else:
        print("  (PostgreSQL is not running on 127.0.0.1:5432: its figures are left out)")
    figures |= loaders
    with tempfile.TemporaryDirectory() as tmp:
        print("SQLite: lookup and writes ...")
        sqlite = lookup_sqlite(Path(tmp) / "lookup.sqlite")
        sqlite |= writes_sqlite(Path(tmp) / "writes.sqlite", rows, per_row)
    for key, value in sqlite.items():
        print(f"  sqlite.{key}  {value:.4g}")
    figures["sqlite"] = {k: round(v, 4) for k, v in sqlite.items()}
    report(figures)


if __name__ == "__main__":
    main()
