"""`slipstream scan` and `slipstream rule`: the static scanner and its rule docs."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core import rules as _catalogue
from ..core import runtime as _runtime
from ..scan import config as _config
from ..scan import engine as _engine
from ..scan import report as _report
from ..scan import runtime_join as _runtime_join
from .common import UsageError, positive, split

__all__ = ["add_parsers", "rule", "scan"]


def _scan_root(paths: Sequence[str]) -> Path:
    """The folder finding paths are relative to: the current folder when every path is
    inside it (paths a terminal and an editor can open), else their common folder."""
    folders = [p if p.is_dir() else p.parent for p in (Path(x).resolve() for x in paths)]
    common = Path(os.path.commonpath(folders))
    here = Path.cwd().resolve()
    return here if common == here or here in common.parents else common


def scan(args: argparse.Namespace) -> int:
    paths = list(args.paths) or ["."]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise UsageError(f"no such file or directory: {', '.join(missing)}")
    root = _scan_root(paths)
    config = _config.load_config(root)
    here = "the command line"
    select, ignore = split(args.select), split(args.ignore)
    if args.baseline is not None:
        _config.read_baseline(args.baseline)  # a bad baseline is a usage error before the scan
    runtime_files = list(args.runtime or ())
    # a bad runtime file is a usage error (ConfigError: exit 2) before the scan, too
    measured = [r for file in runtime_files for r in _runtime.load(file)]
    cache_dir = None
    if config.cache and not args.no_cache:
        # beside the pyproject.toml when there is one, so that scans of a project's subfolders
        # (pre-commit passes the changed files) share one cache
        cache_dir = (config.source.parent if config.source else root) / ".slipstream_cache"
    report = _engine.scan_report(
        paths,
        select=config.select if select is None else _config.resolve_rules(select, "--select", here),
        ignore=config.ignore if ignore is None else _config.resolve_rules(ignore, "--ignore", here),
        min_severity=args.min_severity or config.min_severity,
        exclude=config.exclude if args.exclude is None else tuple(args.exclude),
        knowledge=config.knowledge or None,
        jobs=args.jobs if args.jobs is not None else config.jobs,
        cache_dir=cache_dir,
        root=root,
    )
    fmt = args.format or config.format
    for error in report.errors:
        if fmt != "text" or args.output is not None or args.write_baseline is not None:
            print(f"slipstream: cannot scan {error}", file=sys.stderr)
    if args.write_baseline is not None:
        n = _config.write_baseline(args.write_baseline, report.findings)
        print(f"slipstream: wrote {n} finding(s) to {args.write_baseline}", file=sys.stderr)
        return 2 if report.errors else 0
    if runtime_files:
        report = _runtime_join.join(report, measured, sources=runtime_files)
    if args.baseline is not None:
        kept = _config.filter_baseline(report.findings, args.baseline)
        report = dataclasses.replace(report, findings=tuple(kept))
    text = _report.render(report, fmt, color=False if args.output is not None else None)
    if args.output is not None:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if report.errors:
        return 2
    return 1 if report.findings else 0


def rule(args: argparse.Namespace) -> int:
    if args.rule is None:
        rules = _catalogue.RULES
        width = max((len(r.name) for r in rules), default=0)
        for r in rules:
            print(f"{r.code}  {r.name:<{width}}  {r.severity:<6}  {r.summary}")
        return 0
    try:
        found = _catalogue.rule(args.rule)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    sys.stdout.write(found.doc())
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "scan",
        help="find where code loses time (without running it); exit 1 when it finds some",
        description="Scan Python files for slow patterns; each finding names the slipstream "
        "primitive that fixes it. Settings: [tool.slipstream.scan] in pyproject.toml.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (default: .)")
    p.add_argument("--format", choices=_config.FORMATS, default=None, help="default: text")
    p.add_argument("--output", metavar="FILE", default=None, help="write the report to FILE")
    rules = "comma-separated rule codes, names or code prefixes (SLP201,blocking-in-async,SLP5)"
    p.add_argument("--select", action="append", metavar="RULES", help=f"only these: {rules}")
    p.add_argument("--ignore", action="append", metavar="RULES", help=f"not these: {rules}")
    p.add_argument("--min-severity", choices=("low", "medium", "high"), default=None)
    p.add_argument(
        "--exclude",
        action="append",
        metavar="GLOB",
        help="skip matching paths (repeatable; on top of .venv, build, dist, hidden folders...)",
    )
    p.add_argument("--baseline", metavar="FILE", help="do not report the findings in FILE")
    p.add_argument("--write-baseline", metavar="FILE", help="write the findings to FILE and exit 0")
    p.add_argument(
        "--runtime",
        action="append",
        metavar="FILE",
        help="rank the findings by what ran: join the findings the run-time watchers wrote "
        "to FILE (repeatable)",
    )
    p.add_argument("--jobs", type=positive, metavar="N", help="worker processes (default: cores)")
    p.add_argument(
        "--no-cache", action="store_true", help="do not read or write .slipstream_cache/"
    )
    p = sub.add_parser("rule", help="a rule's documentation (SLP201 or query-in-loop), or all")
    p.add_argument("rule", nargs="?", default=None, metavar="RULE")
