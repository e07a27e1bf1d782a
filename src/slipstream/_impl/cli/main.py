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
import sys
from collections.abc import Sequence

from ..core.errors import SlipstreamError
from ..core.version import __version__
from ..scan import config as _config
from . import demo as _demo
from . import runs as _runs
from . import scan as _scan
from .common import UsageError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="slipstream",
        description=(__doc__ or "").replace("``", "`"),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"slipstream {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _scan.add_parsers(sub)
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
            return _demo.demo(argv[1:])
        args = parser.parse_args(argv)
        if args.command == "scan":
            return _scan.scan(args)
        if args.command == "rule":
            return _scan.rule(args)
        if args.command == "status":
            return asyncio.run(_runs.status(args))
        return asyncio.run(_runs.run(args, resume=args.command == "resume"))
    except (UsageError, SlipstreamError, _config.ConfigError) as exc:
        print(f"slipstream: error: {exc}", file=sys.stderr)
        return 2
