"""A batch's done marks are written while the sink writes the next batch: one checkpoint write
at a time, in order, failure and skip marks included (a real SQLite checkpoint, its writes
slowed on the virtual clock)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import slipstream as ss

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class TestMarkOrder:
    def test_checkpoint_writes_never_overlap_and_follow_their_commit(
        self, tmp_path: Path, vrun: Run
    ) -> None:
        """Half the items fail (failure marks), the sink takes 0.2 s a batch, each checkpoint
        write 1 s: no two writes overlap, each batch's done marks start after its commit,
        in commit order, and every item ends marked."""
        cp = ss.Checkpoint(tmp_path / "c.sqlite")
        real_mark = cp.mark
        writes: list[tuple[str, float, float]] = []
        active = [0]
        overlaps: list[str] = []
        committed: dict[frozenset[str], float] = {}

        async def slow_mark(run_id: str, status: str, entries: Any) -> None:
            entries = list(entries)
            if not entries:
                await real_mark(run_id, status, entries)
                return
            loop = asyncio.get_running_loop()
            active[0] += 1
            if active[0] > 1:
                overlaps.append(status)
            start = loop.time()
            await asyncio.sleep(1.0)
            await real_mark(run_id, status, entries)
            active[0] -= 1
            if status == "done":
                keys = frozenset(e[0] for e in entries)
                assert committed[keys] <= start  # marked only after its batch committed
            writes.append((status, start, loop.time()))

        cp.mark = slow_mark  # type: ignore[method-assign]

        async def stage(x: int) -> int:
            await asyncio.sleep(0.3)
            if x % 2 == 0:
                raise ValueError(x)
            return x

        async def sink(rows: list[int]) -> None:
            await asyncio.sleep(0.2)
            committed[frozenset(str(r) for r in rows)] = asyncio.get_running_loop().time()

        pipeline = ss.Pipeline(
            range(60), [ss.Stage(stage, concurrency=4)], sink, checkpoint=cp, batch_size=4
        )
        report = vrun(pipeline.run())
        assert (report.ok, report.failed) == (30, 30)
        assert overlaps == []
        starts = [w[1] for w in writes]
        assert starts == sorted(starts)
        assert sum(1 for w in writes if w[0] == "done") == len(committed)

        async def marked() -> tuple[set[str], set[str]]:
            return await cp.keys(pipeline.run_id, "done"), await cp.keys(pipeline.run_id, "failed")

        done, failed = vrun(marked())
        assert (len(done), len(failed)) == (30, 30)
