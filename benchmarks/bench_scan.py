"""The static scanner (``slipstream scan``) on real code nobody here wrote, side by side
with ``ast.parse`` alone and with ruff on the same files.

The corpus is the packages installed in this interpreter's site-packages (--quick: sqlalchemy,
starlette, httpx, distributed, about 340,000 lines; full: about 25 packages, about 1,000,000
lines; packages that are not installed are skipped). Their ``.py`` files are copied once into a
temporary folder (site-packages is never touched) and every measurement reads the copy. Each
scanner and ``ast.parse`` measurement runs in a fresh subprocess, so imports, caches and GC
state do not leak between them; the time is taken around the call alone (imports excluded).
Each figure is the best of --repeats runs (3 by default).

Figures (last line, JSON):
  ast_parse_lines_per_s    ``ast.parse`` of every file's bytes, one core, files read first,
                           GC off (as the scanner runs): the floor for any ``ast`` based tool.
  scan_s / scan_lines_per_s
                           a cold ``scan_report(paths, jobs=1, cache_dir=<fresh dir>)``.
  scan_over_ast_parse      scan_lines_per_s / ast_parse_lines_per_s (goal >= 0.5).
  warm_s / warm_speedup    the same scan again with the same cache, nothing changed
                           (goal: warm_speedup = scan_s / warm_s >= 10).
  one_file_changed_s       the same, after a comment was appended to one file of the copy.
  scan_jobs_s              a cold scan with ``jobs=os.cpu_count()`` (``jobs`` workers).
  ruff_s / ruff_findings   ``ruff check --select ASYNC,PERF,RUF006 --no-cache --isolated`` on
                           the same files (its own threads, all cores; ruff_one_core_s: one);
                           ruff_findings counts its ``--output-format json`` entries.
  findings / findings_per_kloc / errors
                           the scanner's findings per rule code, per 1,000 lines, and the
                           files it could not scan.
  peak_mb / import_mb      the cold jobs=1 scan process's peak RSS (ru_maxrss), and the same
                           just after ``import slipstream._impl.scan``, before the scan.
  files / lines            what the scanner scanned.

Run: python benchmarks/bench_scan.py --quick
"""

from __future__ import annotations

import ast
import collections
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import parse_args, report

QUICK_PACKAGES = ("sqlalchemy", "starlette", "httpx", "distributed")
FULL_PACKAGES = (
    *QUICK_PACKAGES,
    "dask",
    "pydantic",
    "anyio",
    "redis",
    "tornado",
    "requests",
    "urllib3",
    "uvicorn",
    "asyncpg",
    "botocore",
    "boto3",
    "s3transfer",
    "httpcore",
    "h11",
    "flask",
    "werkzeug",
    "jinja2",
    "click",
    "rich",
    "fsspec",
    "tenacity",
    "cashews",
    "aiocache",
    "psycopg2",
    "prometheus_client",
    "hypothesis",
)
# the file that gets a comment appended for one_file_changed_s (the first one present)
CHANGED_CANDIDATES = ("sqlalchemy/orm/session.py", "starlette/routing.py", "httpx/_client.py")
RUFF_RULES = "ASYNC,PERF,RUF006"


# -- the measurements that run in a fresh process ----------------------------------------------


def child_parse(spec: dict[str, Any]) -> dict[str, Any]:
    """``ast.parse`` alone: read every file first, then time only the parse loop."""
    datas = [Path(f).read_bytes() for f in spec["files"]]
    gc.disable()
    best = float("inf")
    failed = 0
    for _ in range(spec["repeats"]):
        failed = 0
        t0 = time.perf_counter()
        for data in datas:
            try:
                ast.parse(data)
            except (SyntaxError, ValueError):
                failed += 1
        best = min(best, time.perf_counter() - t0)
    lines = sum(data.count(b"\n") + 1 for data in datas)
    return {"s": best, "lines": lines, "failed": failed}


def child_scan(spec: dict[str, Any]) -> dict[str, Any]:
    """One ``scan_report`` call, timed alone; the process's peak RSS after it."""
    from slipstream._impl.scan import scan_report

    import_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    result = scan_report(
        spec["paths"], jobs=spec["jobs"], cache_dir=spec["cache_dir"], root=spec["root"]
    )
    elapsed = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "s": elapsed,
        "files": result.files,
        "lines": result.lines,
        "findings": dict(collections.Counter(f.code for f in result.findings)),
        "errors": [str(e) for e in result.errors],
        "peak_mb": peak_kib * 1024 / 1e6,
        "import_mb": import_kib * 1024 / 1e6,
    }


def child_main() -> None:
    spec = json.loads(sys.stdin.read())
    measure = child_parse if spec["kind"] == "parse" else child_scan
    print(json.dumps(measure(spec)))


def in_fresh_process(spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"measurement {spec['kind']} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# -- the corpus ---------------------------------------------------------------------------------


def copy_corpus(packages: tuple[str, ...], into: Path) -> tuple[list[str], list[Path]]:
    """Copy each installed package's ``.py`` files (the files the scanner would pick: hidden
    and excluded folders skipped) into ``into``; the packages found and the copied files."""
    from slipstream._impl.scan.engine import DEFAULT_EXCLUDES

    site = Path(sysconfig.get_paths()["purelib"])
    found: list[str] = []
    files: list[Path] = []
    for name in packages:
        source = site / name
        if not (source / "__init__.py").is_file():
            continue
        found.append(name)
        for dirpath, dirnames, filenames in os.walk(source):
            dirnames[:] = sorted(
                d for d in dirnames if not d.startswith(".") and d not in DEFAULT_EXCLUDES
            )
            target = into / Path(dirpath).relative_to(site)
            target.mkdir(parents=True, exist_ok=True)
            for filename in sorted(filenames):
                if filename.endswith(".py"):
                    shutil.copyfile(Path(dirpath) / filename, target / filename)
                    files.append(target / filename)
    return found, files


# -- the side-by-side run ---------------------------------------------------------------------


def ruff_command() -> list[str]:
    ruff = Path(sys.executable).parent / "ruff"
    return [str(ruff)] if ruff.is_file() else [sys.executable, "-m", "ruff"]


def ruff(corpus: Path, rels: list[str], repeats: int) -> dict[str, Any]:
    base = [*ruff_command(), "check", "--select", RUFF_RULES, "--no-cache", "--isolated"]
    base += ["--quiet", "--exit-zero"]

    def timed(env: dict[str, str]) -> float:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run(
                [*base, *rels], cwd=corpus, env=env, check=True, stdout=subprocess.DEVNULL
            )
            best = min(best, time.perf_counter() - t0)
        return best

    figures: dict[str, Any] = {
        "ruff_s": timed(dict(os.environ)),
        "ruff_one_core_s": timed(dict(os.environ, RAYON_NUM_THREADS="1")),
    }
    out = subprocess.run(
        [*base, "--output-format", "json", *rels],
        cwd=corpus,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    entries = json.loads(out or "[]")
    figures["ruff_findings"] = len(entries)
    figures["ruff_by_code"] = dict(sorted(collections.Counter(e["code"] for e in entries).items()))
    return figures


def best_scan(specs: list[dict[str, Any]]) -> dict[str, Any]:
    """Run each spec in its own fresh process; the fastest run's result, with the highest
    peak RSS of them all."""
    runs = [in_fresh_process(spec) for spec in specs]
    best = min(runs, key=lambda r: r["s"])
    return best | {"peak_mb": max(r["peak_mb"] for r in runs)}


def main() -> None:
    args = parse_args(__doc__ or "")
    repeats = args.repeats or 3  # best of 3: this machine varies by 40% run to run
    packages = QUICK_PACKAGES if args.quick else FULL_PACKAGES
    with tempfile.TemporaryDirectory(prefix="bench_scan-") as tmp_name:
        tmp = Path(tmp_name)
        corpus = tmp / "corpus"
        print("copying the corpus out of site-packages ...")
        found, files = copy_corpus(packages, corpus)
        if not files:
            sys.exit("none of the corpus packages is installed")
        print(f"  {len(files)} files of {', '.join(found)}")
        rels = [f.relative_to(corpus).as_posix() for f in files]
        paths = [str(corpus / name) for name in found]

        def scan_spec(cache: str, jobs: int = 1) -> dict[str, Any]:
            return {
                "kind": "scan",
                "paths": paths,
                "root": str(corpus),
                "cache_dir": str(tmp / cache),
                "jobs": jobs,
            }

        print(f"ast.parse alone, best of {repeats} ...")
        parsed = in_fresh_process(
            {"kind": "parse", "files": [str(f) for f in files], "repeats": repeats}
        )
        print(f"cold scan, jobs=1, {repeats} fresh processes and caches ...")
        colds = [scan_spec(f"cold-{i}") for i in range(repeats)]
        cold = best_scan(colds)
        print("warm scan, nothing changed ...")
        warm = best_scan([colds[-1]] * repeats)
        changed_rel = next((c for c in CHANGED_CANDIDATES if c in rels), rels[len(rels) // 2])
        changed_runs = []
        for i in range(repeats):
            with (corpus / changed_rel).open("a") as f:
                f.write(f"\n# bench_scan: changed ({i})\n")
            changed_runs.append(in_fresh_process(colds[-1]))
        changed = min(changed_runs, key=lambda r: r["s"])
        jobs = os.cpu_count() or 1
        print(f"cold scan, jobs={jobs} ...")
        parallel = best_scan([scan_spec(f"jobs-{i}", jobs) for i in range(repeats)])
        print(f"ruff check --select {RUFF_RULES} ...")
        ruff_figures = ruff(corpus, rels, max(repeats, 3))

    lines = cold["lines"]
    total = sum(cold["findings"].values())
    for label, other in (("warm", warm), ("one file changed", changed), ("jobs", parallel)):
        if other["findings"] != cold["findings"] or other["lines"] < lines:
            print(f"  NOTE: the {label} scan's findings or lines differ from the cold scan's")
    if parsed["lines"] != lines:
        print(f"  NOTE: ast.parse saw {parsed['lines']} lines, the scanner {lines}")
    for error in cold["errors"][:10]:
        print(f"  not scanned: {error}")
    scan_lines_per_s = lines / cold["s"]
    ast_lines_per_s = parsed["lines"] / parsed["s"]
    figures: dict[str, Any] = {
        "packages": len(found),
        "files": cold["files"],
        "lines": lines,
        "errors": len(cold["errors"]),
        "ast_parse_s": parsed["s"],
        "ast_parse_lines_per_s": ast_lines_per_s,
        "scan_s": cold["s"],
        "scan_lines_per_s": scan_lines_per_s,
        "scan_over_ast_parse": scan_lines_per_s / ast_lines_per_s,
        "warm_s": warm["s"],
        "warm_speedup": cold["s"] / warm["s"],
        "warm_lines_per_s": lines / warm["s"],
        "one_file_changed_s": changed["s"],
        "one_file_changed_speedup": cold["s"] / changed["s"],
        "jobs": jobs,
        "scan_jobs_s": parallel["s"],
        "jobs_speedup": cold["s"] / parallel["s"],
        **ruff_figures,
        "scan_over_ruff_s": cold["s"] / ruff_figures["ruff_s"],
        "findings_total": total,
        "findings_per_kloc": total / lines * 1000,
        "findings": dict(sorted(cold["findings"].items())),
        "peak_mb": cold["peak_mb"],
        "import_mb": cold["import_mb"],
    }
    report(figures)


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        child_main()
    else:
        main()
