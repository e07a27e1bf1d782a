"""A pipeline run that commits 10 items, prints READY, then holds (until killed).

Usage: ``HOLD_CHECKPOINT=path-or-url HOLD_RUN_ID=id python hold_run.py``. ``pipeline`` is also
the target of ``slipstream status hold_run.py:pipeline`` (same environment variables).
"""

from __future__ import annotations

import asyncio
import os

import slipstream as ss


async def work(n: int) -> int:
    if n >= 10:
        await asyncio.Event().wait()  # held: the run stays in progress until it is killed
    return n


def pipeline() -> ss.Pipeline[int]:
    return ss.Pipeline(
        range(100),
        [ss.Stage(work, concurrency=2)],
        checkpoint=ss.Checkpoint(os.environ["HOLD_CHECKPOINT"]),
        run_id=os.environ["HOLD_RUN_ID"],
        batch_size=5,
        max_wait_s=0.01,
    )


async def main() -> None:
    def ready(progress: ss.PipelineProgress) -> None:
        if progress.ok == 10:
            print("READY", flush=True)

    await pipeline().run(on_progress=ready)


if __name__ == "__main__":
    asyncio.run(main())
