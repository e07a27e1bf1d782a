"""The ``slipstream`` command: find slow code, run the demo, and run users' own pipelines.

    slipstream scan [PATH ...] [--format text|json|sarif|markdown] [--output FILE]
                    [--select RULES] [--ignore RULES] [--min-severity low|medium|high]
                    [--exclude GLOB] [--baseline FILE] [--write-baseline FILE]
                    [--jobs N] [--no-cache]
    slipstream rule [SLP201 | query-in-loop]
    slipstream demo [--assets N --schemas M --db URL --endpoint URL]
    slipstream run    module:attr [--run-id ID] [--retry-failed] [--no-progress]
    slipstream resume module:attr --run-id ID
    slipstream status module:attr [--run-id ID]

``scan`` reads the Python files under each PATH (default ``.``) without running them and reports
where they lose time, each finding naming the slipstream primitive that fixes it; settings come
from ``[tool.slipstream.scan]`` in the nearest pyproject.toml, and the command line wins. Its
exit status is 0 when there are no findings, 1 when there are, 2 for a usage error or when a
file could not be read or parsed (the other files are still scanned and reported). ``rule``
prints a rule's documentation, or lists every rule.

``module:attr`` names a ``Pipeline`` (or a function returning one, sync or async) in an
importable module or a ``.py`` file (``jobs/annotate.py:pipeline``). ``run`` and ``resume``
pause cleanly on Ctrl-C or SIGTERM (the items in flight are committed), print the run's report,
and end with one JSON line; the exit status is 0 when nothing failed, 1 when items failed, 2 for
a usage error or a pipeline that cannot start (a failing setup, a damaged checkpoint), 3
when the run was paused or interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import importlib.util
import inspect
import json
import os
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core import rules as _catalogue
from ..core.errors import SlipstreamError
from ..core.version import __version__
from ..pipeline.checkpoint import RunStatus, format_failure
from ..pipeline.pipeline import Pipeline
from ..scan import config as _config
from ..scan import engine as _engine
from ..scan import report as _report

__all__ = ["main"]


class UsageError(Exception):
    pass


def _load(target: str) -> Any:
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise UsageError(
            f"target must be 'module:attribute' or 'file.py:attribute', got {target!r}"
        )
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise UsageError(f"no such file: {module_name}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot import {module_name}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        sys.path.insert(0, str(path.resolve().parent))
        spec.loader.exec_module(module)
    else:
        sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise UsageError(f"cannot import {module_name!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UsageError(f"{module_name} has no attribute {attr!r}") from None


async def _pipeline(target: str, run_id: str | None) -> Pipeline[Any]:
    obj = _load(target)
    if not isinstance(obj, Pipeline) and callable(obj):
        obj = obj()
        if inspect.isawaitable(obj):
            obj = await obj
    if not isinstance(obj, Pipeline):
        raise UsageError(f"{target} is a {type(obj).__name__}, not an ss.Pipeline")
    if run_id is not None:
        obj.run_id = run_id
    return obj


async def _run(args: argparse.Namespace, *, resume: bool) -> int:
    pipeline = await _pipeline(args.target, args.run_id)
    try:
        if resume:
            status = await pipeline.status()
            if status is None:
                raise UsageError(
                    f"run {pipeline.run_id!r} is not in the checkpoint "
                    f"({pipeline.checkpoint!r}); nothing to resume"
                )
        report = await pipeline.run(
            progress=not args.no_progress and sys.stderr.isatty(),
            retry_failed=getattr(args, "retry_failed", False),
            handle_signals=True,
        )
    finally:
        await pipeline.aclose()
    _print_report(report)
    if report.state != "finished":
        return 3
    return 1 if report.failed else 0


def _print_report(report: Any) -> None:
    try:
        from rich.console import Console

        Console(stderr=True).print(report.render())
    except ImportError:  # pragma: no cover - rich is in the dev extra
        pass
    out = report.as_dict()
    shown = list(out.get("failures") or [])[:_JSON_FAILURES]
    out["failures"] = shown
    # the line stays one readable line at any size: the first failures, and how many it left
    # out (the checkpoint and `slipstream status` have them all)
    out["failures_left_out"] = max(0, int(out.get("failed") or 0) - len(shown))
    print(json.dumps(out, default=str))


_JSON_FAILURES = 100


async def _status(args: argparse.Namespace) -> int:
    pipeline = await _pipeline(args.target, args.run_id)
    if pipeline.checkpoint is None:
        raise UsageError(f"{args.target} has no checkpoint: there is no status to show")
    try:
        status = await pipeline.status()
        if status is None and args.run_id is None:
            return await _list_runs(pipeline.checkpoint, pipeline.run_id)
        if status is None:
            raise UsageError(f"run {pipeline.run_id!r} is not in the checkpoint")
        failures = await pipeline.checkpoint.failures(pipeline.run_id)
    finally:
        await pipeline.checkpoint.aclose()
    print(
        f"run {status.run_id}: {status.state}{_owner(status)}; done {status.done}, failed "
        f"{status.failed}, skipped {status.skipped}",
        file=sys.stderr,
    )
    for f in failures[:20]:
        print(textwrap.indent(format_failure(f.key, f.stage, f.error), "  "), file=sys.stderr)
    if len(failures) > 20:
        print(f"  ... and {len(failures) - 20} more failure(s)", file=sys.stderr)
    out = dataclasses.asdict(status)
    out["failures"] = [dataclasses.asdict(f) for f in failures[:100]]
    print(json.dumps(out, default=str))
    return 0


async def _list_runs(checkpoint: Any, default: str) -> int:
    """`status` without --run-id, when the pipeline's own run id has no run: every run the
    checkpoint knows, one line each, and their statuses as JSON."""
    runs = [s for s in [await checkpoint.status(r) for r in await checkpoint.runs()] if s]
    if not runs:
        raise UsageError(f"the checkpoint has no runs (not even {default!r})")
    print(f"no run {default!r}; the checkpoint has {len(runs)}:", file=sys.stderr)
    for st in runs:
        print(
            f"  {st.run_id}: {st.state}{_owner(st)}; done {st.done}, failed {st.failed}, "
            f"skipped {st.skipped}",
            file=sys.stderr,
        )
    print(json.dumps({"runs": [dataclasses.asdict(st) for st in runs]}, default=str))
    return 0


def _owner(status: RunStatus) -> str:
    """Who ran a running or interrupted run, and when it was last heard of."""
    if status.state not in ("running", "interrupted") or status.pid is None:
        return ""
    text = f" (pid {status.pid} on {status.host}"
    if status.heartbeat is not None:
        text += f", last heartbeat {max(0.0, time.time() - status.heartbeat):.0f} s ago"
    if status.state == "interrupted":
        text += ", gone"
    return text + ")"


def _demo_script() -> Path:
    """The demo's ``run.py``: under ``$SLIPSTREAM_EXAMPLES`` if set, else in the ``examples/`` of
    the current directory or the nearest parent that has one (a source checkout; the demo is
    not installed with the package, so the installed CLI never reaches into its own files)."""
    tail = Path("annotation") / "run.py"
    configured = os.environ.get("SLIPSTREAM_EXAMPLES")
    if configured:
        script = Path(configured) / tail
        if script.is_file():
            return script
        raise UsageError(f"SLIPSTREAM_EXAMPLES={configured!r} has no {tail}")
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        script = folder / "examples" / tail
        if script.is_file():
            return script
    raise UsageError(
        "the demo runs from a source checkout (examples/annotation/ is not installed with the "
        "package): git clone the repository and run 'make demo' inside it, or point "
        "SLIPSTREAM_EXAMPLES at its examples/ folder"
    )


def _demo(argv: Sequence[str]) -> int:
    script = _demo_script()
    spec = importlib.util.spec_from_file_location("slipstream_demo_run", script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return int(module.main(list(argv), prog="slipstream demo"))


def _split(values: Sequence[str] | None) -> list[str] | None:
    """``--select A,B --select C`` as ``[A, B, C]``; None when the option was not given."""
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def _scan_root(paths: Sequence[str]) -> Path:
    """The folder finding paths are relative to: the current folder when every path is
    inside it (paths a terminal and an editor can open), else their common folder."""
    folders = [p if p.is_dir() else p.parent for p in (Path(x).resolve() for x in paths)]
    common = Path(os.path.commonpath(folders))
    here = Path.cwd().resolve()
    return here if common == here or here in common.parents else common


def _scan(args: argparse.Namespace) -> int:
    paths = list(args.paths) or ["."]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise UsageError(f"no such file or directory: {', '.join(missing)}")
    root = _scan_root(paths)
    config = _config.load_config(root)
    here = "the command line"
    select, ignore = _split(args.select), _split(args.ignore)
    if args.baseline is not None:
        _config.read_baseline(args.baseline)  # a bad baseline is a usage error before the scan
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


def _rule(args: argparse.Namespace) -> int:
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


def _add_scan_parser(sub: Any) -> None:
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
    p.add_argument("--jobs", type=_positive, metavar="N", help="worker processes (default: cores)")
    p.add_argument(
        "--no-cache", action="store_true", help="do not read or write .slipstream_cache/"
    )
    p = sub.add_parser("rule", help="a rule's documentation (SLP201 or query-in-loop), or all")
    p.add_argument("rule", nargs="?", default=None, metavar="RULE")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="slipstream",
        description=(__doc__ or "").replace("``", "`"),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"slipstream {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_scan_parser(sub)
    sub.add_parser("demo", help="the annotation demo (see examples/annotation/run.py --help)")
    helps = {
        "run": "run a pipeline defined in a module; with a checkpoint, a run id that already "
        "exists continues (items done are skipped), a new one starts from the first item",
        "resume": "continue a run that was paused or interrupted: like run, but the run id "
        "must already be in the checkpoint (a typo does not start a new run)",
    }
    for name in ("run", "resume"):
        p = sub.add_parser(name, help=helps[name], description=helps[name])
        p.add_argument("target", help="module:attribute or file.py:attribute")
        p.add_argument(
            "--run-id",
            default=None,
            required=name == "resume",
            help="the run's id in the checkpoint (default: the pipeline's run_id)",
        )
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        if name == "run":
            p.add_argument(
                "--retry-failed",
                action="store_true",
                help="run the items that failed in this run again (done items stay skipped)",
            )
    p = sub.add_parser("status", help="what the checkpoint knows about a run")
    p.add_argument("target", help="module:attribute or file.py:attribute")
    p.add_argument(
        "--run-id",
        default=None,
        help="the run to show (default: the pipeline's run_id, else every run in the checkpoint)",
    )
    try:
        if argv[:1] == ["demo"]:
            return _demo(argv[1:])
        args = parser.parse_args(argv)
        if args.command == "scan":
            return _scan(args)
        if args.command == "rule":
            return _rule(args)
        if args.command == "status":
            return asyncio.run(_status(args))
        return asyncio.run(_run(args, resume=args.command == "resume"))
    except (UsageError, SlipstreamError, _config.ConfigError) as exc:
        print(f"slipstream: error: {exc}", file=sys.stderr)
        return 2
