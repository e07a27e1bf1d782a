"""What the runtime query watchers cost per statement, side by side with no watcher and with
sentry-sdk's SQLAlchemy integration recording the same statements.

Contenders, each running the same statement N times (median of repeats, microseconds per
statement):

  sqlite_bare / sqlite_watch     sqlite3 in memory, "select ?": no hook / ss.watch active
                                 (set_trace_callback, fingerprint, call site, tally)
  sa_bare / sa_watch / sa_sentry SQLAlchemy Core on sqlite in memory: no listener / ss.watch /
                                 sentry-sdk's SqlalchemyIntegration inside a transaction
  pg_bare / pg_noop_logger / pg_watch
                                 asyncpg "SELECT 1" round trips to 127.0.0.1: no logger / a
                                 do-nothing logger (asyncpg's own logging path) / ss.watch
                                 (add_query_logger), interleaved; pg_overhead_pct is the
                                 wall-clock difference (noisy on a shared machine), and
                                 pg_logger_us_per_stmt our logger callback alone
  psycopg_bare / psycopg_watch   psycopg 3 "SELECT 1" round trips (conn.execute) to 127.0.0.1
                                 on one connection: its own cursor / the watching cursor in a
                                 scope, interleaved; psycopg_us_per_stmt is the difference in
                                 the caller's CPU time (the server's answer time is noise)

Figures (last line, JSON): watch_us_per_stmt (sqlite3 raw overhead), sa_watch_us_per_stmt,
sentry_us_per_stmt (SQLAlchemy overhead of sentry-sdk), pg_overhead_pct, psycopg_us_per_stmt.

Run: python benchmarks/bench_detect.py --quick
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from collections.abc import Callable
from typing import Any

from _common import PG_URL, median_of, parse_args, pg_up, report

import slipstream as ss


def per_stmt_us(n: int, run: Callable[[int], None]) -> float:
    t0 = time.perf_counter()
    run(n)
    return (time.perf_counter() - t0) / n * 1e6


def interleaved(
    repeats: int, bare: Callable[[], float], watched: Callable[[], float]
) -> tuple[float, float, float]:
    """Bare and watched rounds in turn (drift on a shared machine hits both alike): the two
    medians and the median of the paired differences."""
    pairs = [(bare(), watched()) for _ in range(repeats)]
    return (
        statistics.median(p[0] for p in pairs),
        statistics.median(p[1] for p in pairs),
        statistics.median(p[1] - p[0] for p in pairs),
    )


def sqlite_run(conn: sqlite3.Connection) -> Callable[[int], None]:
    def run(n: int) -> None:
        for i in range(n):
            conn.execute("select ?", (i,))  # noqa: SLP201 - one statement per call, measured

    return run


def watched(run: Callable[[int], None]) -> Callable[[int], None]:
    def inner(n: int) -> None:
        with ss.watch():
            run(n)

    return inner


def sa_run(engine: Any) -> Callable[[int], None]:
    import sqlalchemy as sa

    stmt = sa.text("select :i")

    def run(n: int) -> None:
        with engine.connect() as conn:
            for i in range(n):
                conn.execute(stmt, {"i": i})

    return run


def sentried(run: Callable[[int], None]) -> Callable[[int], None]:
    import sentry_sdk

    def inner(n: int) -> None:
        done = 0
        while done < n:  # sentry keeps at most 1000 spans a transaction: stay below it
            step = min(500, n - done)
            with sentry_sdk.start_transaction(name="bench"):
                run(step)
            done += step

    return inner


def logger_us(logged: Any) -> float:
    """Our asyncpg query-logger callback alone, called with a real LoggedQuery in a scope."""
    from slipstream._impl.detect.watchers import _asyncpg_logged

    n = 100_000
    with ss.watch():
        t0 = time.perf_counter()
        for _ in range(n):
            _asyncpg_logged(logged)
        return (time.perf_counter() - t0) / n * 1e6


def pg_figures(n: int, repeats: int) -> dict[str, float]:
    import asyncpg

    async def main() -> dict[str, float]:
        conn = await asyncpg.connect(PG_URL)

        async def loop(k: int) -> float:
            t0 = time.perf_counter()
            for _ in range(k):
                await conn.fetchval("SELECT 1")
            return (time.perf_counter() - t0) / k * 1e6

        async def watched_loop(k: int) -> float:
            async with ss.watch(conn):
                return await loop(k)

        bare: list[float] = []
        noop: list[float] = []
        watch: list[float] = []

        def nothing(logged: Any) -> None:
            pass

        await loop(200)
        saved: list[Any] = []
        conn.add_query_logger(saved.append)
        await conn.fetchval("SELECT 1")
        await asyncio.sleep(0)
        conn.remove_query_logger(saved.append)
        conn_record = saved[0]
        for _ in range(repeats * 3):  # interleaved: the machine's drift hits both alike
            bare.append(await loop(n))
            conn.add_query_logger(nothing)
            noop.append(await loop(n))
            conn.remove_query_logger(nothing)
            watch.append(await watched_loop(n))
            for cb in list(conn._query_loggers):  # the next bare round runs with no logger
                conn.remove_query_logger(cb.cb)
        await conn.close()
        b, w = statistics.median(bare), statistics.median(watch)
        return {
            "pg_bare_us": b,
            "pg_noop_logger_us": statistics.median(noop),
            "pg_watch_us": w,
            "pg_logger_us_per_stmt": logger_us(conn_record),
            "pg_overhead_pct": (w - b) / b * 100,
        }

    return asyncio.run(main())


def psycopg_figures(n: int, repeats: int) -> dict[str, float]:
    """One connection, its own cursor and the watching one in turn (the same server process
    answers both); per statement, the wall clock and this thread's CPU time, which leaves
    out the wait for the server: the watcher's cost is CPU in the caller."""
    import psycopg

    conn = psycopg.connect(PG_URL, autocommit=True)
    own = conn.cursor_factory
    ss.instrument(conn)
    watching = conn.cursor_factory

    def loop(k: int) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.thread_time()
        for _ in range(k):
            conn.execute("SELECT 1")  # noqa: SLP201 - one round trip per call, measured
        return (time.perf_counter() - t0) / k * 1e6, (time.thread_time() - c0) / k * 1e6

    loop(200)
    bare: list[tuple[float, float]] = []
    watch: list[tuple[float, float]] = []
    for _ in range(repeats * 3):  # interleaved: the machine's drift hits both alike
        conn.cursor_factory = own
        bare.append(loop(n))
        conn.cursor_factory = watching
        with ss.watch():
            watch.append(loop(n))
    conn.close()
    b, w = (statistics.median(x[0] for x in r) for r in (bare, watch))
    bc, wc = (statistics.median(x[1] for x in r) for r in (bare, watch))
    return {
        "psycopg_bare_us": b,
        "psycopg_watch_us": w,
        "psycopg_bare_cpu_us": bc,
        "psycopg_watch_cpu_us": wc,
        # medians of the paired differences: each pair ran back to back
        "psycopg_us_per_stmt": statistics.median(
            y[1] - x[1] for x, y in zip(bare, watch, strict=True)
        ),
        "psycopg_overhead_pct": statistics.median(
            (y[0] - x[0]) / x[0] * 100 for x, y in zip(bare, watch, strict=True)
        ),
    }


def main() -> None:
    args = parse_args(__doc__ or "")
    n = 20_000 if args.quick else 100_000
    repeats = args.repeats or (5 if args.quick else 9)
    figures: dict[str, Any] = {"statements": n}

    conn = sqlite3.connect(":memory:")
    plain = sqlite3.connect(":memory:")
    ss.instrument(conn)
    (
        figures["sqlite_bare_us"],
        figures["sqlite_watch_us"],
        figures["watch_us_per_stmt"],
    ) = interleaved(
        repeats * 2,
        lambda: per_stmt_us(n, sqlite_run(plain)),
        lambda: per_stmt_us(n, watched(sqlite_run(conn))),
    )

    import sqlalchemy as sa

    bare_engine = sa.create_engine("sqlite://")
    watch_engine = sa.create_engine("sqlite://")
    ss.instrument(watch_engine)
    (
        figures["sa_bare_us"],
        figures["sa_watch_us"],
        figures["sa_watch_us_per_stmt"],
    ) = interleaved(
        repeats * 2,
        lambda: per_stmt_us(n, sa_run(bare_engine)),
        lambda: per_stmt_us(n, watched(sa_run(watch_engine))),
    )
    try:
        import sentry_sdk
        from sentry_sdk.integrations.sqlalchemy import SqlalchemyIntegration
    except ImportError:
        figures["sentry_us_per_stmt"] = None
    else:
        sentry_sdk.init(
            dsn="http://key@127.0.0.1:9/1",  # a closed port: nothing leaves the machine
            traces_sample_rate=1.0,
            integrations=[SqlalchemyIntegration()],
            default_integrations=False,
        )
        sentry_engine = sa.create_engine("sqlite://")
        figures["sa_sentry_us"] = median_of(
            repeats, lambda: per_stmt_us(n, sentried(sa_run(sentry_engine)))
        )
        figures["sentry_us_per_stmt"] = figures["sa_sentry_us"] - figures["sa_bare_us"]

    if pg_up():
        figures.update(pg_figures(n // 20, repeats))
        figures.update(psycopg_figures(n // 20, repeats))
    else:
        figures["pg_overhead_pct"] = figures["psycopg_us_per_stmt"] = None
    report(figures)


if __name__ == "__main__":
    main()
