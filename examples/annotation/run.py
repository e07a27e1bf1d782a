"""The main demo: an annotation job (every asset x every JSON schema, classified by an LLM,
stored in a database), written the naive way and with slipstream, at two shapes.

1. Starts the OpenAI-compatible emulator on 127.0.0.1 (or uses ``--endpoint``).
2. A small shape (8 assets x 2 schemas): ``naive.py`` then ``fast.py``.
3. At scale (500 assets x 3 schemas): ``fast.py``; the naive loop would take minutes, so it
   runs on a sample of pairs and its time is extrapolated (the table says so).
4. Checks every stored result against the emulator's deterministic answers, prints a
   side-by-side table, and writes a PNG chart of the runs' timelines to ``demo-output/``.

``make demo`` runs this; ``slipstream demo --assets N --schemas M --db URL --endpoint URL``
runs one shape of your choosing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import slipstream as ss

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import fast  # noqa: E402  (examples/ is not a package)
import naive  # noqa: E402
import workload  # noqa: E402
from _serving import running  # noqa: E402

LATENCY_MS, SIGMA, RATE, P5XX, HANDSHAKE_S, CONCURRENCY = 80.0, 0.3, 300.0, 0.02, 0.25, 32
NAIVE_SAMPLE = 24  # pairs the naive loop runs at scale before extrapolating


def ideal_s(
    n_calls: int, *, latency_s: float, concurrency: int, rate: float, handshake_s: float
) -> float:
    """The physical bound: one handshake, then the calls at the pace the endpoint's latency,
    the concurrency and its rate limit allow, plus one latency to drain."""
    pace = min(concurrency / latency_s, rate) if rate else concurrency / latency_s
    return handshake_s + latency_s + n_calls / pace


@dataclass
class Column:
    title: str
    seconds: float
    creations: int
    round_trips: int
    calls: int
    retries: int
    ok: int
    lost: int
    ideal: float
    timeline: list[tuple[float, float]]
    note: str = ""


@contextlib.contextmanager
def endpoint(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with running(
        HERE / "emulator.py",
        "--latency-ms",
        str(LATENCY_MS),
        "--sigma",
        str(SIGMA),
        "--rate",
        str(RATE),
        "--p5xx",
        str(P5XX),
    ) as started:
        yield started


def db_for(base: str | None, out: Path, name: str) -> str:
    return base if base else str(out / f"{name}.sqlite")


async def run_naive(
    url: str,
    assets: Path,
    ids: list[str],
    schemas: list[dict[str, Any]],
    db: str,
    title: str,
    ideal: float,
    sample: int | None = None,
    model: str = "annotator",
    storage: str | None = None,
) -> Column:
    await workload.prepare_db(db, reset=True)
    total = len(ids) * len(schemas)
    if sample is not None and sample < total:
        per = max(1, sample // len(schemas))
        stats = await naive.annotate(
            url,
            storage or assets,
            ids[:per],
            schemas,
            db,
            handshake_s=HANDSHAKE_S,
            model_name=model,
        )
        factor = total / (per * len(schemas))
        return Column(
            title,
            stats.seconds * factor,
            round(stats.client_creations * factor),
            round(stats.db_round_trips * factor),
            round(stats.calls * factor),
            0,
            round(stats.ok * factor),
            round(stats.lost * factor),
            ideal,
            stats.timeline,
            note=f"extrapolated from {per * len(schemas)} pairs",
        )
    stats = await naive.annotate(
        url, storage or assets, ids, schemas, db, handshake_s=HANDSHAKE_S, model_name=model
    )
    return Column(
        title,
        stats.seconds,
        stats.client_creations,
        stats.db_round_trips,
        stats.calls,
        0,
        stats.ok,
        stats.lost,
        ideal,
        stats.timeline,
    )


async def run_fast(
    url: str,
    assets: Path,
    ids: list[str],
    schemas: list[dict[str, Any]],
    db: str,
    title: str,
    ideal: float,
    progress: bool,
    runner: str = "local",
    model: str = "annotator",
    storage: str | None = None,
) -> Column:
    await workload.prepare_db(db, reset=True)
    dask = runner == "dask"
    settings = fast.Settings(
        endpoint=url,
        assets_dir=assets,
        db=db,
        handshake_s=HANDSHAKE_S,
        concurrency=CONCURRENCY,
        rate_per_s=RATE,
        model=model,
        storage=storage,
        runner=ss.DaskRunner(concurrency_per_worker=CONCURRENCY // 2) if dask else None,
    )
    report, counters = await fast.annotate(settings, ids, schemas, progress=progress)
    stored = await workload.stored(db)
    expect = workload.expected(assets, ids, schemas)
    mismatched = sum(1 for k, v in expect.items() if stored.get(k) != v)
    if mismatched or len(stored) != len(expect):
        raise SystemExit(f"{title}: {mismatched} stored results differ from the expected answers")
    llm = report.stages[-1]
    return Column(
        title,
        report.elapsed_s,
        # on Dask each worker creates its LLM client once, in its own registry
        report.client_creations + (settings.runner.n_workers if dask else 0),
        report.db_round_trips,
        counters.calls or llm.ok + llm.failed + llm.retries,  # remote calls are not counted
        report.retries,
        report.ok,
        report.failed,
        ideal,
        counters.timeline,
        "LLM stage on a 2-worker Dask LocalCluster" if dask else "",
    )


def table(columns: list[Column]) -> Any:
    from rich.table import Table

    t = Table(title="Annotation: naive loop (seed 000's before) against ss.Pipeline")
    t.add_column("")
    for c in columns:
        t.add_column(c.title, justify="right")
    rows: list[tuple[str, Any]] = [
        ("time", lambda c: f"{c.seconds:.2f} s"),
        ("client creations", lambda c: f"{c.creations:,}"),
        ("database round trips", lambda c: f"{c.round_trips:,}"),
        ("LLM calls", lambda c: f"{c.calls:,}"),
        ("retries", lambda c: f"{c.retries:,}"),
        ("results stored", lambda c: f"{c.ok:,}"),
        ("lost or failed", lambda c: f"{c.lost:,}"),
        ("time over ideal", lambda c: f"{c.seconds / c.ideal:.2f}x"),
    ]
    for label, cell in rows:
        t.add_row(label, *(cell(c) for c in columns))
    notes = [f"{c.title}: {c.note}" for c in columns if c.note]
    t.caption = "; ".join(
        [*notes, f"ideal = handshake + calls at min(concurrency / latency, {RATE:g}/s)"]
    )
    return t


def chart(columns: list[Column], path: Path) -> None:
    """Each LLM call as a line from its start to its end; a naive run and the pipeline run of
    the same shape share their time axis, so their lengths compare at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(columns), 1, figsize=(10, 2.2 * len(columns) + 0.5), squeeze=False)
    for row, c in enumerate(columns):
        ax = axes[row][0]
        for i, (start, end) in enumerate(sorted(c.timeline)):
            color = "tab:blue" if c.title.startswith("slip") else "tab:red"
            ax.plot([start, end], [i, i], color=color, linewidth=1)
        ax.set_title(f"{c.title}: {c.seconds:.2f} s ({c.note or 'measured'})", fontsize=9)
        ax.set_ylabel("LLM call")
        pair = columns[row - row % 2 : row - row % 2 + 2]
        ax.set_xlim(0, max(max((e for _, e in p.timeline), default=0.0) for p in pair) * 1.02)
    axes[-1][0].set_xlabel("seconds since the run started")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


async def preflight(url: str, db: str | None) -> None:
    """A wrong endpoint or database is a clear error before any work, for the naive run too."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=5) as client:
            (await client.get(f"{url}/v1/models")).raise_for_status()
    except httpx.HTTPError as exc:
        raise ConnectionError(f"the endpoint {url} does not answer /v1/models: {exc}") from exc
    if db:
        await workload.prepare_db(db)


async def demo(args: argparse.Namespace) -> list[Column]:
    out = Path(args.output)
    data = out / "data"
    shutil.rmtree(data, ignore_errors=True)
    mean_latency = LATENCY_MS / 1000 * math.exp(SIGMA**2 / 2)
    shapes = [(args.assets, args.schemas)] if args.assets else [(8, 2), (500, 3)]
    max_assets = max(a for a, _ in shapes)
    assets = data / "assets"
    ids = workload.make_assets(assets, max_assets)
    if args.storage:  # an S3-compatible bucket: put the assets there first
        await workload.fill_bucket(args.storage, assets)
    columns: list[Column] = []
    with endpoint(args.endpoint) as url:
        await preflight(url, args.db)
        for n_assets, n_schemas in shapes:
            schemas = workload.make_schemas(n_schemas)
            shape = f"{n_assets}x{n_schemas}"
            ideal = ideal_s(
                n_assets * n_schemas,
                latency_s=mean_latency,
                concurrency=CONCURRENCY,
                rate=RATE,
                # an S3 bucket's handshake is real and not configured; a directory's is
                handshake_s=0.0 if args.storage else HANDSHAKE_S,
            )
            sample = None if n_assets * n_schemas <= 48 else NAIVE_SAMPLE
            print(f"{shape}: naive loop ...", flush=True)
            columns.append(
                await run_naive(
                    url,
                    assets,
                    ids[:n_assets],
                    schemas,
                    db_for(args.db, out, f"naive-{shape}"),
                    f"naive {shape}",
                    ideal,
                    sample,
                    model=args.model,
                    storage=args.storage,
                )
            )
            print(f"{shape}: slipstream pipeline ...", flush=True)
            columns.append(
                await run_fast(
                    url,
                    assets,
                    ids[:n_assets],
                    schemas,
                    db_for(args.db, out, f"slip-{shape}"),
                    f"slipstream {shape}" + (" (dask)" if args.runner == "dask" else ""),
                    ideal,
                    progress=not args.quiet,
                    runner=args.runner,
                    model=args.model,
                    storage=args.storage,
                )
            )
    return columns


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(__doc__ or "").replace("``", "`"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--assets", type=int, default=0, help="one shape: this many assets")
    parser.add_argument(
        "--schemas", type=int, default=2, help="one shape: this many JSON schemas (default 2)"
    )
    parser.add_argument("--db", default=None, help="results database (default: SQLite files)")
    parser.add_argument("--endpoint", default=None, help="an OpenAI-compatible base URL")
    parser.add_argument(
        "--output", default="demo-output", help="where the table and chart go (demo-output)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--model", default="annotator", help="the model the endpoint serves")
    parser.add_argument(
        "--storage", default=None, help="s3://bucket/prefix?endpoint=URL: read assets from S3"
    )
    parser.add_argument(
        "--runner",
        choices=["local", "dask"],
        default="local",
        help="dask: run the LLM stage on a local Dask cluster (127.0.0.1)",
    )
    args = parser.parse_args(argv)
    if args.assets < 0 or args.schemas < 1:
        parser.error("--assets must be >= 0 and --schemas >= 1")
    Path(args.output).mkdir(parents=True, exist_ok=True)
    try:
        columns = asyncio.run(demo(args))
    except (ConnectionError, FileNotFoundError, ss.PipelineError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    from rich.console import Console

    Console(width=None if sys.stdout.isatty() else 100).print(table(columns))
    png = Path(args.output) / "timeline.png"
    chart(columns, png)
    for naive_col, fast_col in zip(columns[::2], columns[1::2], strict=True):
        faster = 1 - fast_col.seconds / naive_col.seconds
        print(f"{fast_col.title}: {faster:.0%} faster than naive, every result verified")
    print(f"chart: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
