"""What a pipeline tells: ``Plan`` (before a run), ``PipelineProgress`` (during), ``RunReport``
and ``StageReport`` (after)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, final

from ..detect.detectors import QueryFinding
from .checkpoint import FailedItem, RunState

__all__ = ["PipelineProgress", "Plan", "RunReport", "StagePlan", "StageReport"]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class StagePlan:
    """One stage in a ``Plan``: what it sustains, how long it is busy, the concurrency that
    keeps up, and (after a run that measured them) its queries per item and the queries
    ``n_items`` would make (None when not measured)."""

    name: str
    latency_s: float
    concurrency: int
    rate_per_s: float | None
    throughput_per_s: float
    busy_s: float
    suggested_concurrency: int
    queries_per_item: float | None = None
    queries: int | None = None


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """``Pipeline.plan``'s estimate: the makespan, the bottleneck, and what to change."""

    n_items: int
    makespan_s: float
    bottleneck: str
    stages: tuple[StagePlan, ...]
    advice: tuple[str, ...]
    queries: int | None = None  # predicted over the stages the last run measured

    def __str__(self) -> str:
        queries = "" if self.queries is None else f", {self.queries:,} queries"
        lines = [
            f"{self.n_items} items: about {self.makespan_s:.2f} s, bottleneck "
            f"{self.bottleneck!r}{queries}"
        ]
        for s in self.stages:
            rate = f", rate {s.rate_per_s:g}/s" if s.rate_per_s else ""
            per_item = (
                "" if s.queries_per_item is None else f", {s.queries_per_item:.2f} queries/item"
            )
            lines.append(
                f"  {s.name}: {s.latency_s * 1000:.1f} ms x {s.concurrency} in flight{rate} -> "
                f"{s.throughput_per_s:.1f}/s{per_item}"
            )
        lines.extend(f"  advice: {a}" for a in self.advice)
        return "\n".join(lines)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class StageReport:
    """One stage's part of a run: its outcomes and call latencies, and the statements its
    calls sent through instrumented drivers (``ss.instrument``), helpers and tasks they
    started included.

    ``queries_per_item`` is ``queries`` over the items that reached the stage (ok, failed and
    skipped), None when not measured: nothing was ever instrumented in this process, the
    stage runs on a remote runner (Dask), ``Pipeline(detect=False)``, or no item reached it.
    ``findings`` are the N+1 patterns in the stage's statements with the run's gates
    (``Pipeline(detect=...)``): a query line repeated once per item across the calls (a
    finding's ``count`` near the items: batch the lookups across items) or a loop inside each
    call (``count`` above the items).
    """

    name: str
    ok: int
    failed: int
    skipped: int
    calls: int
    retries: int
    mean_s: float
    p50_s: float
    p95_s: float
    queries: int = 0
    queries_per_item: float | None = None
    db_s: float = 0.0
    findings: tuple[QueryFinding, ...] = ()


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineProgress:
    """Passed to ``on_progress``: where the run stands (JSON-friendly via ``asdict``)."""

    run_id: str
    ok: int
    failed: int
    skipped: int
    already_done: int
    total: int | None
    elapsed_s: float


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class RunReport:
    """What a run did. ``state`` is ``finished``, ``paused`` or ``interrupted`` (the sink could
    not write some rows: they are in ``unwritten`` and stay not-done in the checkpoint).

    ``ideal_s`` is the least time the work this run did could take: for each stage, the sum of
    its calls' durations over its concurrency (or its calls over its rate limit), the largest
    of these. Items that failed without a call (an open breaker) cost nothing in it, so a run
    where most items failed fast is not "faster than ideal". ``ratio_to_ideal`` is
    ``elapsed_s / ideal_s``, None when the run made no call (nothing to compare).
    ``failures`` holds the first 100 failures as ``FailedItem(key, stage, error, detail)``,
    ``error`` as ``describe_error`` writes it (the exception, its notes, its causes), the same
    records the checkpoint keeps.

    ``queries`` and ``db_s`` total every statement the run sent through instrumented drivers
    (the stages', the source's, the sink's, the row builder's); ``findings`` are the N+1
    patterns in all of them, one per call site (a stage's own are in its ``StageReport``).
    """

    run_id: str
    state: RunState
    ok: int
    failed: int
    skipped: int
    already_done: int
    unwritten: int
    elapsed_s: float
    ideal_s: float
    stages: tuple[StageReport, ...]
    sink_flushes: int
    checkpoint_writes: int
    source_round_trips: int
    client_creations: int
    retries: int
    failures: tuple[FailedItem, ...] = ()  # the first 100
    queries: int = 0
    db_s: float = 0.0
    findings: tuple[QueryFinding, ...] = ()

    @property
    def db_round_trips(self) -> int:
        """Transactions against databases: sink flushes, checkpoint writes, source reads."""
        return self.sink_flushes + self.checkpoint_writes + self.source_round_trips

    @property
    def ratio_to_ideal(self) -> float | None:
        """``elapsed_s / ideal_s`` (>= 1 up to clock resolution); None without any call."""
        return self.elapsed_s / self.ideal_s if self.ideal_s > 0 else None

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["db_round_trips"] = self.db_round_trips
        out["ratio_to_ideal"] = self.ratio_to_ideal
        return out

    def summary(self) -> str:
        """The one-line totals under the table (also without rich)."""
        ratio = self.ratio_to_ideal
        ideal = "ideal n/a" if ratio is None else f"ideal {self.ideal_s:.2f} s ({ratio:.2f}x)"
        line = (
            f"ok {self.ok}, failed {self.failed}, skipped {self.skipped}, already done "
            f"{self.already_done}; {self.client_creations} client creations, "
            f"{self.db_round_trips} database round trips; {ideal}"
        )
        measured = [s for s in self.stages if s.queries_per_item is not None]
        if measured or self.queries:
            line += f"; {self.queries} queries ({self.db_s * 1000:.1f} ms in the database)"
            if measured:
                per_item = ", ".join(f"{s.name} {s.queries_per_item:.2f}" for s in measured)
                line += f", per item: {per_item}"
            if self.findings:
                line += f", {len(self.findings)} N+1 finding(s)"
        return line

    def render(self) -> Any:
        """A rich table of the run, and its first failures (needs the ``rich`` extra)."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(title=f"run {self.run_id}: {self.state} in {self.elapsed_s:.2f} s")
        columns = ["stage", "ok", "failed", "skipped", "calls", "retries", "p50 ms", "p95 ms"]
        queried = any(s.queries_per_item is not None for s in self.stages)
        if queried:  # a run that measured no statement keeps the table it always had
            columns.append("queries/item")
        for col in columns:
            table.add_column(col, justify="left" if col == "stage" else "right")
        for s in self.stages:
            cells = [
                s.name,
                str(s.ok),
                str(s.failed),
                str(s.skipped),
                str(s.calls),
                str(s.retries),
                f"{s.p50_s * 1000:.1f}",
                f"{s.p95_s * 1000:.1f}",
            ]
            if queried:
                per_item = s.queries_per_item
                cells.append("-" if per_item is None else f"{per_item:.2f}")
            table.add_row(*cells)
        table.caption = self.summary()
        shown = [Text(str(f)) for f in self.findings[:10]]
        failures = [Text(str(f)) for f in self.failures[:10]]
        if failures and self.failed > len(failures):
            failures.append(Text(f"... and {self.failed - len(failures)} more failure(s)"))
        shown.extend(failures)
        return Group(table, *shown) if shown else table
