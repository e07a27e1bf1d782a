"""Seed 000's annotation job end to end: naive loop against ss.Pipeline, and kill -9 resumes.

Against the OpenAI-compatible emulator (examples/annotation/emulator.py: lognormal latency,
median 80 ms, sigma 0.3; 300 calls/s answered with 429 beyond; 2% transient 503s) and a 250 ms
storage handshake:

- ``seed_shape`` (8 assets x 2 schemas): the naive loop (examples/annotation/naive.py) and the
  pipeline (fast.py, median of 3 runs);
- ``scale`` (500 x 3): the pipeline; the naive loop on a sample of 24 pairs, extrapolated
  (running it whole takes about 9 minutes);
- ``ideal_s`` is the physical bound: the handshake, then every call at
  ``min(concurrency / mean latency, rate limit)``, plus one latency;
- ``resume``: a 2,000-item run of fast.py (its own process, a SQLite checkpoint) killed with
  SIGKILL at 5 random moments, then run to the end; ``resume_lost`` counts expected results
  missing or wrong, ``resume_duplicates`` keys stored more than once.

- ``dask``: a trivial stage run by ``ss.DaskRunner`` on a 2-worker LocalCluster (127.0.0.1),
  batches of 100, against one Dask task per item and against the same pipeline run locally.

Figures (last line, JSON): seed_shape{naive_s, slipstream_s, speedup, faster_pct, ideal_s,
ratio_to_ideal}, scale{...}, resume_lost, resume_duplicates, resume_kills,
resume_extra_calls, creations_slipstream, creations_naive_seed_shape, dask_us_per_item,
dask_one_task_per_item_us, local_pipeline_us_per_item, dask_creations_per_worker.

Run: python benchmarks/bench_pipeline.py --quick
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import parse_args, report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "examples" / "annotation"))
import run  # noqa: E402  (the demo: its workload shape and ideal bound are the benchmark's)
import workload  # noqa: E402
from _serving import running  # noqa: E402
from run import CONCURRENCY, HANDSHAKE_S, LATENCY_MS, RATE, SIGMA  # noqa: E402

EMULATOR = ROOT / "examples" / "annotation" / "emulator.py"
MEAN_LATENCY_S = LATENCY_MS / 1000 * math.exp(SIGMA**2 / 2)


def ideal_s(n_calls: int) -> float:
    return run.ideal_s(
        n_calls,
        latency_s=MEAN_LATENCY_S,
        concurrency=CONCURRENCY,
        rate=RATE,
        handshake_s=HANDSHAKE_S,
    )


def shape_figures(naive_s: float, slip_s: float, n_calls: int) -> dict[str, float]:
    ideal = ideal_s(n_calls)
    return {
        "naive_s": naive_s,
        "slipstream_s": slip_s,
        "speedup": naive_s / slip_s,
        "faster_pct": (1 - slip_s / naive_s) * 100,
        "ideal_s": ideal,
        "ratio_to_ideal": slip_s / ideal,
    }


def count_rows(db: Path) -> int:
    try:
        conn = sqlite3.connect(db, timeout=1)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM annotations").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


def resume_under_kills(tmp: Path, kills: int, seed: int = 11) -> dict[str, Any]:
    """2,000 items (500 assets x 4 schemas), SIGKILLed ``kills`` times, then finished."""
    rng = random.Random(seed)
    n_assets, n_schemas = 500, 4
    data = tmp / "resume"
    ids = workload.make_assets(data / "assets", n_assets)
    schemas = workload.make_schemas(n_schemas)
    db = data / "results.sqlite"
    args = [
        sys.executable,
        str(ROOT / "examples" / "annotation" / "fast.py"),
        "--assets",
        str(n_assets),
        "--schemas",
        str(n_schemas),
        "--data",
        str(data),
        "--db",
        str(db),
        "--checkpoint",
        str(data / "checkpoint.sqlite"),
        "--run-id",
        "bench",
        "--rate",
        "0",
        "--quiet",
    ]
    emulator_args = ("--latency-ms", "5", "--rate", "0", "--p5xx", "0.02")
    with running(EMULATOR, *emulator_args) as url:
        args += ["--endpoint", url]
        done_kills = 0
        targets = sorted(rng.sample(range(50, 1800), kills))
        for target in targets:
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < deadline:
                if count_rows(db) >= target:
                    time.sleep(rng.uniform(0, 0.05))  # then a random moment after it
                    break
                time.sleep(0.005)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                done_kills += 1
            proc.wait(timeout=30)
        final = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True)
        calls = int(httpx.get(f"{url}/stats").json().get("200", 0))
    last = json.loads(final.stdout.strip().splitlines()[-1])
    expect = workload.expected(data / "assets", ids, schemas)
    stored = asyncio.run(workload.stored(str(db)))
    conn = sqlite3.connect(db)
    dupes = conn.execute(
        "SELECT COUNT(*) FROM (SELECT key FROM annotations GROUP BY key HAVING COUNT(*) > 1)"
    ).fetchone()[0]
    conn.close()
    lost = sum(1 for k, v in expect.items() if stored.get(k) != v)
    return {
        "resume_items": len(expect),
        "resume_kills": done_kills,
        "resume_lost": lost,
        "resume_duplicates": int(dupes),
        "resume_extra_calls": calls - len(expect),
        "resume_final_state": last["state"],
        "resume_final_already_done": last["already_done"],
    }


async def shapes(quick: bool, tmp: Path) -> dict[str, Any]:
    """Both implementations at both shapes, through the demo's own runners (which check every
    stored result against the expected answers)."""
    figures: dict[str, Any] = {}
    assets = tmp / "assets"
    ids = workload.make_assets(assets, 500)
    emulator_args = ("--latency-ms", str(LATENCY_MS), "--sigma", str(SIGMA), "--rate", str(RATE))
    shapes = [("seed_shape", 8, 2, 3), ("scale", 500, 3, 1 if quick else 3)]
    with running(EMULATOR, *emulator_args) as url:
        for key, n_assets, n_schemas, repeats in shapes:
            schemas = workload.make_schemas(n_schemas)
            n = n_assets * n_schemas
            ideal = ideal_s(n)
            sample = None if n <= 48 else run.NAIVE_SAMPLE
            print(f"{n_assets} x {n_schemas}: naive ...", flush=True)
            nv = await run.run_naive(
                url,
                assets,
                ids[:n_assets],
                schemas,
                str(tmp / "naive.sqlite"),
                "naive",
                ideal,
                sample,
            )
            if nv.ok < 0.75 * n:  # the baseline must do the job too, or the comparison is moot
                raise SystemExit(f"the naive loop stored {nv.ok} of {n} results")
            print(f"{n_assets} x {n_schemas}: slipstream x{repeats} ...", flush=True)
            runs = [
                await run.run_fast(
                    url,
                    assets,
                    ids[:n_assets],
                    schemas,
                    str(tmp / "fast.sqlite"),
                    "slipstream",
                    ideal,
                    progress=False,
                )
                for _ in range(repeats)
            ]
            slip = statistics.median(c.seconds for c in runs)
            figures[key] = shape_figures(nv.seconds, slip, n)
            figures[key]["naive_lost"] = nv.lost
            figures[key]["retries"] = runs[0].retries
            if sample is not None:
                figures[key]["naive_extrapolated_from_pairs"] = sample
            if key == "seed_shape":
                figures["creations_naive_seed_shape"] = nv.creations
            else:
                figures["creations_slipstream"] = runs[0].creations
    return figures


async def dask_figures(n_items: int, naive_items: int) -> dict[str, Any]:
    """A trivial stage on a 2-worker LocalCluster: ss.DaskRunner (batches of 100) against one
    Dask task per item, and against the same pipeline run locally."""
    import _dask_jobs
    from distributed import wait

    import slipstream as ss

    async def pipeline_s(runner: Any) -> float:
        pipeline = ss.Pipeline(
            range(n_items),
            [ss.Stage(_dask_jobs.label, setup=_dask_jobs.setup, runner=runner)],
        )
        t0 = time.perf_counter()
        report = await pipeline.run()
        assert report.ok == n_items
        return time.perf_counter() - t0

    local_s = await pipeline_s(None)
    async with ss.DaskRunner(batch_size=100, concurrency_per_worker=32) as runner:
        await pipeline_s(runner)  # warm: workers import slipstream once
        batched_s = statistics.median([await pipeline_s(runner) for _ in range(3)])
        creations = await runner.creations_per_worker()
        client = runner.client
        t0 = time.perf_counter()
        futures = client.map(_dask_jobs.one, range(naive_items), pure=False)
        await wait(futures)
        per_task_s = time.perf_counter() - t0
        del futures
    return {
        "dask_us_per_item": batched_s / n_items * 1e6,
        "dask_one_task_per_item_us": per_task_s / naive_items * 1e6,
        "local_pipeline_us_per_item": local_s / n_items * 1e6,
        "dask_creations_per_worker": max(creations.values()),
        "dask_workers": len(creations),
    }


def main() -> None:
    args = parse_args(__doc__ or "")
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(shapes(args.quick, Path(tmp)))
        print("resume: 2,000 items, 5 SIGKILLs ...", flush=True)
        figures.update(resume_under_kills(Path(tmp), kills=5))
    print("dask: 20,000 items in batches of 100 on a 2-worker LocalCluster ...", flush=True)
    figures.update(asyncio.run(dask_figures(20_000, 2_000)))
    report(figures)


if __name__ == "__main__":
    main()
