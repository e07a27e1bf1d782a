"""`slipstream run`, `resume` and `status`: a user's pipeline, loaded from `module:attr`."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import inspect
import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from ..pipeline.checkpoint import RunStatus, format_failure
from ..pipeline.pipeline import Pipeline
from .common import UsageError

__all__ = ["load", "run", "status"]


def load(target: str) -> Any:
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
    obj = load(target)
    if not isinstance(obj, Pipeline) and callable(obj):
        obj = obj()
        if inspect.isawaitable(obj):
            obj = await obj
    if not isinstance(obj, Pipeline):
        raise UsageError(f"{target} is a {type(obj).__name__}, not an ss.Pipeline")
    if run_id is not None:
        obj.run_id = run_id
    return obj


async def run(args: argparse.Namespace, *, resume: bool) -> int:
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


async def status(args: argparse.Namespace) -> int:
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
