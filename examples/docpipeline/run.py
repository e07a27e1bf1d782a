"""Run the document pipeline: ``--documents N --database-url URL``, services by URL or local.

Without ``--parse-url`` it starts the local parse service (examples/_job_service.py: jobs of
random length, ``202`` with ``Retry-After`` until done) in this process; without ``--llm-url``
it starts the OpenAI-compatible LLM emulator (examples/annotation/emulator.py) limited to
``--llm-limit`` requests a second, answering ``429`` with ``Retry-After`` past it. It prints
one JSON object (the run's report and the primitives' statistics) and exits 0 when no item
failed, 1 otherwise. Run it twice: the second run makes no LLM call (the answer cache is the
SQLite file ``--cache``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import pipeline  # noqa: E402  (examples/ is not a package)
from _job_service import JobService  # noqa: E402
from _serving import running  # noqa: E402

EMULATOR = HERE.parent / "annotation" / "emulator.py"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=40, help="how many documents")
    parser.add_argument("--database-url", required=True, help="postgresql://...")
    parser.add_argument("--parse-url", default=None, help="the parse service (default: local)")
    parser.add_argument("--llm-url", default=None, help="the LLM endpoint (default: local)")
    parser.add_argument("--llm-limit", type=float, default=20.0, help="the local LLM's rate")
    parser.add_argument("--model", default="annotator", help="the model the endpoint serves")
    parser.add_argument("--cache", default="demo-output/docpipeline-cache.sqlite")
    parser.add_argument("--table", default="doc_labels")
    parser.add_argument("--checkpoint", default=None, help="a checkpoint file, to resume")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    args = parser.parse_args(argv)
    if args.documents < 1:
        parser.error("--documents must be at least 1")
    return args


async def _run(args: argparse.Namespace, llm_url: str) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        parse_url = args.parse_url
        if parse_url is None:
            service = JobService(seed=7, min_s=0.05, max_s=0.5)
            parse_url = (await stack.enter_async_context(service)).url
        cache = Path(args.cache)
        cache.parent.mkdir(parents=True, exist_ok=True)
        settings = pipeline.Settings(
            parse_url=parse_url,
            llm_url=llm_url,
            database_url=args.database_url,
            cache_path=cache,
            table=args.table,
            model=args.model,
            checkpoint=args.checkpoint,
        )
        documents = pipeline.make_documents(args.documents)
        report, tools = await pipeline.process(settings, documents, progress=not args.quiet)
        return {**report.as_dict(), **tools.summary()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        llm_url = args.llm_url
        if llm_url is None:
            limit = ("--rate", str(args.llm_limit), "--burst", "2", "--p5xx", "0")
            llm_url = stack.enter_context(running(EMULATOR, "--latency-ms", "20", *limit))
        summary = asyncio.run(_run(args, llm_url))
    print(json.dumps(summary, default=str))
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
