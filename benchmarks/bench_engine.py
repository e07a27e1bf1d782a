"""The pipeline engine against hand-written queues and the peers, on the same trivial job.

N = 100,000 items through two trivial async stages (``inc``: x + 1, then ``dbl``: x * 2); every
run is checked (N results, each the right value) so a broken engine cannot look fast:

- ``raw_queue``: the physical bound for this shape in asyncio: two bounded asyncio.Queues
  (maxsize 16, the Stage default's buffer) and three tasks (source + stage 1, stage 2, a
  collector appending to a list), sentinel shutdown;
- ``pipeline``: ``ss.Pipeline(range(N), [Stage(inc), Stage(dbl)], sink=...)``, Stage's default
  concurrency (8 per stage), an async sink extending a list, no checkpoint;
- ``checkpoint_sqlite``: the same with an ``ss.Checkpoint`` on a SQLite file and
  ``ss.sqlite_flush`` upserting by key into a SQLite table (default batch size, 100);
- ``checkpoint_pg``: a PostgreSQL checkpoint (``postgresql://`` URL) and ``ss.asyncpg_flush``
  through an asyncpg pool into a fresh table, all in a schema of its own, dropped at the end
  (skipped, with a message, when PostgreSQL is not up);
- ``aiostream``: ``stream.iterate(range(N)) | pipe.map(inc) | pipe.map(dbl)``, collected;
- ``dask_bag``: ``db.from_sequence(range(N), npartitions=DASK_PARTITIONS).map(..).map(..)``
  (sync twins of the stages) on a 2-worker LocalCluster (processes, 127.0.0.1), start-up
  excluded, after one warm-up compute;
- ``million``: 1,000,000 items through ss.Pipeline (a sink that only counts and sums) in a child
  process of this script, with its peak RSS (VmHWM: a child's ru_maxrss on Linux starts at
  its parent's high-water mark); and the raw queues in another child. ``--quick``
  runs 1,000,000 only when the 100k figures predict it fits in its 60 s, else 200,000
  (``million_items`` is the count actually run).

Figures (last line, JSON): raw_queue_us_per_item, pipeline_us_per_item, pipeline_over_raw,
checkpoint_sqlite_items_per_s, checkpoint_pg_items_per_s, aiostream_us_per_item,
dask_bag_us_per_item, million_items, million_us_per_item, million_peak_mb,
raw_million_us_per_item, raw_million_peak_mb (+ the concurrency, queue size and partitions).
Wall-clock medians of 3; raw_queue and pipeline: 5 pairs run in turn after a warm-up, and
pipeline_over_raw the median of the pairs' ratios. ``--quick`` (under 60 s on 2 cores): 1 run
of the checkpointed cases, aiostream and dask, and the checkpointed cases and aiostream on
50,000 items (``slow_cases_items``; their per-item cost does not depend on N).

Run: python benchmarks/bench_engine.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import PG_URL, median_of, parse_args, pg_up, report

import slipstream as ss

N = 100_000
QUEUE_SIZE = 16  # a Stage holds concurrency + buffer = 2 * 8 items by default
DASK_PARTITIONS = 10
QUICK_BUDGET_S = 60.0
QUICK_SLOW_N = 50_000  # --quick: the checkpointed cases and aiostream (~10-140 us an item)
_DONE = object()  # the raw queues' sentinel


async def inc(x: int) -> int:
    return x + 1


async def dbl(x: int) -> int:
    return x * 2


def expected(n: int) -> list[int]:
    return [(x + 1) * 2 for x in range(n)]


def checked(name: str, got: list[int], n: int) -> None:
    """Raise unless ``got`` holds exactly the n right values (in any order)."""
    if len(got) != n or sorted(got) != expected(n):
        raise SystemExit(f"{name}: {len(got)} results, not the {n} expected values")


def checked_report(name: str, report_: Any, n: int) -> None:
    if report_.ok != n or report_.failed or report_.state != "finished":
        raise SystemExit(f"{name}: ok {report_.ok} of {n}, failed {report_.failed}")


async def raw_queue(n: int, collect: Any) -> float:
    """Two bounded queues, three tasks; ``collect(value)`` receives every result."""
    q1: asyncio.Queue[Any] = asyncio.Queue(QUEUE_SIZE)
    q2: asyncio.Queue[Any] = asyncio.Queue(QUEUE_SIZE)

    async def source() -> None:
        for x in range(n):
            await q1.put(await inc(x))
        await q1.put(_DONE)

    async def stage2() -> None:
        while (v := await q1.get()) is not _DONE:
            await q2.put(await dbl(v))
        await q2.put(_DONE)

    async def collector() -> None:
        while (v := await q2.get()) is not _DONE:
            collect(v)

    t0 = time.perf_counter()
    await asyncio.gather(source(), stage2(), collector())
    return time.perf_counter() - t0


def raw_case(n: int) -> float:
    out: list[int] = []
    elapsed = asyncio.run(raw_queue(n, out.append))
    checked("raw_queue", out, n)
    return elapsed


async def pipeline_run(n: int, sink: Any) -> float:
    pipeline = ss.Pipeline(range(n), [ss.Stage(inc), ss.Stage(dbl)], sink=sink)
    t0 = time.perf_counter()
    result = await pipeline.run()
    elapsed = time.perf_counter() - t0
    checked_report("pipeline", result, n)
    return elapsed


def pipeline_case(n: int) -> float:
    out: list[int] = []

    async def sink(rows: list[int]) -> None:
        out.extend(rows)

    elapsed = asyncio.run(pipeline_run(n, sink))
    checked("pipeline", out, n)
    return elapsed


def row(item: ss.Item, value: int) -> tuple[str, int]:
    return (item.key, value)


def checked_rows(name: str, rows: list[tuple[str, int]], n: int) -> None:
    if len(rows) != n or dict(rows) != {str(x): (x + 1) * 2 for x in range(n)}:
        raise SystemExit(f"{name}: {len(rows)} rows stored, not the {n} expected ones")


def sqlite_case(n: int, tmp: Path, i: int) -> float:
    db = tmp / f"sink{i}.sqlite"
    ddl = "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
    sink = ss.sqlite_flush(
        db, "results", ["key", "value"], conflict=["key"], setup=lambda c: c.execute(ddl)
    )

    async def main() -> float:
        async with ss.Pipeline(
            range(n),
            [ss.Stage(inc), ss.Stage(dbl)],
            sink=sink,
            row=row,
            checkpoint=ss.Checkpoint(tmp / f"checkpoint{i}.sqlite"),
            run_id=f"bench{i}",
        ) as pipeline:
            t0 = time.perf_counter()
            result = await pipeline.run()
            elapsed = time.perf_counter() - t0
        checked_report("checkpoint_sqlite", result, n)
        return elapsed

    elapsed = asyncio.run(main())
    conn = sqlite3.connect(db)
    checked_rows("checkpoint_sqlite", conn.execute("SELECT key, value FROM results").fetchall(), n)
    conn.close()
    return elapsed


async def pg_case(n: int, repeats: int) -> list[float]:
    """``repeats`` runs, each into a fresh table, in a schema dropped at the end."""
    import asyncpg  # type: ignore[import-untyped]

    schema = f"bench_engine_{int(time.time() * 1000) % 10**9}"
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}search_path={schema}"
    admin = await asyncpg.connect(PG_URL)
    await admin.execute(f"CREATE SCHEMA {schema}")
    times: list[float] = []
    try:
        pool = await asyncpg.create_pool(
            PG_URL, min_size=2, max_size=4, server_settings={"search_path": schema}
        )
        try:
            for i in range(repeats):
                table = f"{schema}.results{i}"
                ddl = f"CREATE TABLE {table} (key text PRIMARY KEY, value bigint NOT NULL)"
                sink = ss.asyncpg_flush(
                    pool,
                    table,
                    ["key", "value"],
                    conflict=["key"],
                    marker_table=f"{schema}.batches",
                    setup=lambda c, ddl=ddl: c.execute(ddl),
                )
                async with ss.Pipeline(
                    range(n),
                    [ss.Stage(inc), ss.Stage(dbl)],
                    sink=sink,
                    row=row,
                    checkpoint=ss.Checkpoint(url),
                    run_id=f"bench{i}",
                ) as pipeline:
                    t0 = time.perf_counter()
                    result = await pipeline.run()
                    times.append(time.perf_counter() - t0)
                checked_report("checkpoint_pg", result, n)
                stored = await pool.fetch(f"SELECT key, value FROM {table}")  # noqa: SLP201 one check a repeat
                checked_rows("checkpoint_pg", [(r["key"], r["value"]) for r in stored], n)
        finally:
            await pool.close()
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()
    return times


def aiostream_case(n: int) -> float:
    from aiostream import pipe, stream

    async def main() -> tuple[float, list[int]]:
        xs = stream.iterate(range(n)) | pipe.map(inc) | pipe.map(dbl)
        t0 = time.perf_counter()
        out = await stream.list(xs)
        return time.perf_counter() - t0, out

    elapsed, out = asyncio.run(main())
    checked("aiostream", out, n)
    return elapsed


def dask_case(n: int, repeats: int) -> float:
    import dask.bag as db
    from distributed import Client, LocalCluster

    def once(count: int) -> float:
        t0 = time.perf_counter()
        bag = db.from_sequence(range(count), npartitions=DASK_PARTITIONS)
        out = bag.map(lambda x: x + 1).map(lambda x: x * 2).compute()  # sync twins
        elapsed = time.perf_counter() - t0
        checked("dask_bag", list(out), count)
        return elapsed

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster),
    ):
        once(1_000)  # warm: the workers unpickle the functions and start their threads once
        return median_of(repeats, lambda: once(n))


# -- the million: a child process each, for its own peak RSS -----------------------------------


def peak_mb() -> float:
    """This process's peak RSS in MB: ``ru_maxrss``, unless Linux's ``VmHWM`` is there. On
    Linux a child's ``ru_maxrss`` starts at its parent's high-water mark (fork/exec carry it
    over: 187 MB after this script's dask run), while VmHWM belongs to the new image alone."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, n: int) -> None:
    """Run ``n`` items through ``kind`` (pipeline or raw), print one JSON line."""
    start_mb = peak_mb()
    got = [0, 0]  # count, sum

    def collect(v: int) -> None:
        got[0] += 1
        got[1] += v

    async def sink(rows: list[int]) -> None:
        got[0] += len(rows)
        got[1] += sum(rows)

    if kind == "pipeline":
        elapsed = asyncio.run(pipeline_run(n, sink))
    else:
        elapsed = asyncio.run(raw_queue(n, collect))
    if got != [n, n * (n + 1)]:  # sum of (x + 1) * 2 for x < n
        raise SystemExit(f"{kind}: the sink got {got[0]} values summing to {got[1]}")
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {"items": n, "us_per_item": elapsed / n * 1e6, "peak_mb": peak_mb()}
    print(json.dumps(figures | {"start_mb": start_mb, "ru_maxrss_mb": maxrss_mb}))


def run_child(kind: str, n: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--items", str(n)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {kind} failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def million_count(quick: bool, spent_s: float, pipe_us: float, raw_us: float) -> int:
    """1,000,000, unless --quick and the 100k figures predict it would not fit its budget."""
    if not quick:
        return 1_000_000
    predicted = spent_s + 1.25 * (pipe_us + raw_us) + 2.0  # us/item * 1M = s; 2 s start-ups
    return 1_000_000 if predicted < QUICK_BUDGET_S - 3 else 200_000


def _step(began: float, what: str) -> None:
    print(f"[{time.perf_counter() - began:5.1f} s] {what} ...", flush=True)


def main() -> None:
    if "--child" in sys.argv:
        parser = argparse.ArgumentParser()
        parser.add_argument("--child", choices=["pipeline", "raw"], required=True)
        parser.add_argument("--items", type=int, required=True)
        ns = parser.parse_args()
        child(ns.child, ns.items)
        return
    args = parse_args(__doc__ or "")
    began = time.perf_counter()
    repeats = args.repeats or 3
    slow_repeats = args.repeats or (1 if args.quick else 3)
    concurrency = ss.Stage(inc).concurrency
    slow_n = QUICK_SLOW_N if args.quick else N  # the checkpointed cases and aiostream
    figures: dict[str, Any] = {"n": N, "slow_cases_items": slow_n}
    figures |= {"stage_concurrency": concurrency, "queue_size": QUEUE_SIZE}

    _step(began, f"raw queues and ss.Pipeline (concurrency {concurrency}), {N:,} items")
    raw_case(N // 10)  # warm both (imports, the first loop), then run them in turn: drift on
    pipeline_case(N // 10)  # a shared machine hits both alike, and each ratio is of a pair
    pairs = [(raw_case(N), pipeline_case(N)) for _ in range(max(repeats, 5))]
    raw_s = statistics.median(r for r, _ in pairs)
    pipe_s = statistics.median(p for _, p in pairs)
    figures["raw_queue_us_per_item"] = raw_s / N * 1e6
    figures["pipeline_us_per_item"] = pipe_s / N * 1e6
    figures["pipeline_over_raw"] = statistics.median(p / r for r, p in pairs)

    _step(began, "checkpoint on SQLite, sqlite_flush upsert")
    with tempfile.TemporaryDirectory() as tmp:
        runs = iter(range(slow_repeats))
        sqlite_s = median_of(slow_repeats, lambda: sqlite_case(slow_n, Path(tmp), next(runs)))
    figures["checkpoint_sqlite_items_per_s"] = slow_n / sqlite_s

    if pg_up():
        _step(began, "checkpoint on PostgreSQL, asyncpg_flush upsert")
        pg_times = asyncio.run(pg_case(slow_n, slow_repeats))
        figures["checkpoint_pg_items_per_s"] = slow_n / sorted(pg_times)[len(pg_times) // 2]
    else:
        print("PostgreSQL is not up on 127.0.0.1:5432: checkpoint_pg skipped", flush=True)
        figures["checkpoint_pg_items_per_s"] = None

    _step(began, "aiostream")
    try:
        aio_s = median_of(slow_repeats, lambda: aiostream_case(slow_n))
        figures["aiostream_us_per_item"] = aio_s / slow_n * 1e6
    except ImportError as exc:
        print(f"aiostream is not installed ({exc}): skipped", flush=True)
        figures["aiostream_us_per_item"] = None

    _step(began, f"dask.bag, {DASK_PARTITIONS} partitions, 2-worker LocalCluster")
    figures["dask_bag_us_per_item"] = dask_case(N, slow_repeats) / N * 1e6
    figures["dask_partitions"] = DASK_PARTITIONS

    spent = time.perf_counter() - began
    million = million_count(
        args.quick, spent, figures["pipeline_us_per_item"], figures["raw_queue_us_per_item"]
    )
    _step(began, f"{million:,} items in child processes (pipeline, raw queues)")
    pipe_child = run_child("pipeline", million)
    raw_child = run_child("raw", million)
    figures["million_items"] = million
    figures["million_us_per_item"] = pipe_child["us_per_item"]
    figures["million_peak_mb"] = pipe_child["peak_mb"]
    figures["million_start_mb"] = pipe_child["start_mb"]
    figures["raw_million_us_per_item"] = raw_child["us_per_item"]
    figures["raw_million_peak_mb"] = raw_child["peak_mb"]
    figures["total_s"] = time.perf_counter() - began
    report(figures)


if __name__ == "__main__":
    main()
