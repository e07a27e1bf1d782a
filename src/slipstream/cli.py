"""The ``slipstream`` command: the demo, and running users' own pipelines.

    slipstream demo [--assets N --schemas M --db URL --endpoint URL]
    slipstream run    module:attr [--run-id ID] [--retry-failed] [--no-progress]
    slipstream resume module:attr --run-id ID
    slipstream status module:attr [--run-id ID]

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
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._exceptions import SlipstreamError
from .fix._checkpoint import RunStatus, format_failure
from .fix._pipeline import Pipeline

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
    print(json.dumps(report.as_dict(), default=str))


async def _status(args: argparse.Namespace) -> int:
    pipeline = await _pipeline(args.target, args.run_id)
    if pipeline.checkpoint is None:
        raise UsageError(f"{args.target} has no checkpoint: there is no status to show")
    try:
        status = await pipeline.status()
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


def _demo(argv: Sequence[str]) -> int:
    script = Path(__file__).resolve().parents[2] / "examples" / "annotation" / "run.py"
    if not script.is_file():
        raise UsageError(
            "the demo runs from a source checkout (examples/annotation/ is not installed with "
            "the package): git clone the repository and run 'make demo'"
        )
    spec = importlib.util.spec_from_file_location("slipstream_demo_run", script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return int(module.main(list(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="slipstream", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="the annotation demo (see examples/annotation/run.py --help)")
    for name in ("run", "resume"):
        p = sub.add_parser(name, help=f"{name} a pipeline defined in a module")
        p.add_argument("target", help="module:attribute or file.py:attribute")
        p.add_argument("--run-id", default=None, required=name == "resume")
        p.add_argument("--no-progress", action="store_true")
        if name == "run":
            p.add_argument("--retry-failed", action="store_true")
    p = sub.add_parser("status", help="what the checkpoint knows about a run")
    p.add_argument("target")
    p.add_argument("--run-id", default=None)
    try:
        if argv[:1] == ["demo"]:
            return _demo(argv[1:])
        args = parser.parse_args(argv)
        if args.command == "status":
            return asyncio.run(_status(args))
        return asyncio.run(_run(args, resume=args.command == "resume"))
    except (UsageError, SlipstreamError) as exc:
        print(f"slipstream: error: {exc}", file=sys.stderr)
        return 2
