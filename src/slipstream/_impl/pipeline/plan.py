"""The pipeline's performance model: ``estimate`` before a run, ``ideal_s`` after one.

A stage sustains ``min(concurrency / latency, rate)`` items a second. Before a run that gives
the makespan, the bottleneck and the concurrency each stage needs to keep up (``Plan``); after
a run, the same bound over the calls the run made is the least time they could have taken
(``RunReport.ideal_s``).

A stage's measured queries per item (the last run's ``StageReport.queries_per_item``) price
``n_items`` in statements; a stage at one or more per item is advised with its top finding:
the same line once per call (batch it across items: a ``DataLoader`` shared by the stage's
calls in flight) or many times per call (a loop inside the call), and the rule's fix.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping, Sequence

from .report import Plan, StagePlan, StageReport
from .stage import Stage, _rate_burst, _rate_per_s

__all__ = ["estimate", "ideal_s"]


def estimate(
    stages: Sequence[Stage],
    n_items: int,
    given: Mapping[str, float],
    measured: Mapping[str, float],
    queried: Mapping[str, StageReport] | None = None,
) -> Plan:
    """The makespan of ``n_items`` (see ``Pipeline.plan``): a stage's latency is
    ``given[name]``, else ``measured[name]`` (the last run's), else its ``latency_s``; its
    queries per item are ``queried[name]``'s (the last run that measured them), if any."""
    queried = queried or {}
    plans = [
        _stage_plan(s, given.get(s.name) or measured.get(s.name) or s.latency_s) for s in stages
    ]
    if not plans:
        return Plan(n_items=n_items, makespan_s=0.0, bottleneck="", stages=(), advice=())
    slowest = min(plans, key=lambda p: p.throughput_per_s)
    pace = slowest.throughput_per_s
    makespan = n_items / pace + sum(p.latency_s for p in plans) if n_items else 0.0
    rated = [p.rate_per_s for p in plans if p.rate_per_s is not None]
    target = min(rated) if rated else pace
    advice: list[str] = []
    final: list[StagePlan] = []
    total_queries: int | None = None
    for p in plans:
        suggested = max(1, math.ceil(target * p.latency_s * 1.1))
        if p.rate_per_s is not None and p.rate_per_s <= target:
            suggested = max(1, math.ceil(p.rate_per_s * p.latency_s * 1.1))
        if suggested > p.concurrency and p.throughput_per_s < target * 0.999:
            advice.append(
                f"raise {p.name!r} concurrency from {p.concurrency} to {suggested}: it "
                f"sustains {p.throughput_per_s:.1f}/s, the pipeline could do {target:.1f}/s"
            )
        seen = queried.get(p.name)
        per_item = seen.queries_per_item if seen is not None else None
        queries = round(per_item * n_items) if per_item is not None else None
        if seen is not None and per_item is not None and queries is not None:
            total_queries = (total_queries or 0) + queries
            if per_item >= 1:
                advice.append(_query_advice(p, seen, per_item, n_items, queries))
        final.append(
            dataclasses.replace(
                p,
                busy_s=n_items / p.throughput_per_s,
                suggested_concurrency=suggested,
                queries_per_item=per_item,
                queries=queries,
            )
        )
    if slowest.rate_per_s is not None and slowest.throughput_per_s >= slowest.rate_per_s:
        advice.append(
            f"{slowest.name!r} is held by its rate limit ({slowest.rate_per_s:g}/s); more "
            "concurrency will not help, a higher quota would"
        )
    return Plan(
        n_items=n_items,
        makespan_s=makespan,
        bottleneck=slowest.name,
        stages=tuple(final),
        advice=tuple(advice),
        queries=total_queries,
    )


def _query_advice(
    p: StagePlan, seen: StageReport, per_item: float, n_items: int, queries: int
) -> str:
    """The advice for a stage making ``per_item`` >= 1 queries per item: its top finding (the
    same line once per call, or a loop inside the call) and the rule catalogue's fix."""
    head = f"stage {p.name!r} makes {per_item:.1f} queries per item"
    cost = f"{queries:,} queries for {n_items:,} items"
    in_flight = (
        f"batches the {p.concurrency} calls in flight"
        if p.concurrency > 1
        else "batches the calls in flight: raise the concurrency from 1"
    )
    if not seen.findings:  # under the gates, or spread over many lines
        return (
            f"{head}: {cost}; load what the items need in batches (an ss.DataLoader shared "
            f"by the stage's calls {in_flight})"
        )
    top = seen.findings[0]
    items = seen.ok + seen.failed + seen.skipped
    if top.count > items:
        how = f"{top.count / items:.1f} per call from that line: a loop inside each call"
    else:
        how = (
            "the same statement once per call: batch it across items (an ss.DataLoader "
            f"shared by the stage's calls {in_flight})"
        )
    fix = top.fix
    if top.code != "SLP201":
        fix += " In a pipeline, return the row instead: the sink writes in batches."
    return f"{head} ({top.code} at {_where(top.path)}:{top.line}): {cost}; {how}. {fix}"


def _where(path: str) -> str:
    """``path`` relative to the working directory when it is inside it (shorter advice)."""
    here = os.getcwd() + os.sep
    return path[len(here) :] if path.startswith(here) else path


def _stage_plan(stage: Stage, latency_s: float | None) -> StagePlan:
    """What one stage sustains at ``latency_s`` (busy time and advice are filled in later)."""
    if latency_s is None:
        raise ValueError(
            f"stage {stage.name!r} has no latency: pass Stage(latency_s=...), "
            "plan(latency_s={...}), or run the pipeline once"
        )
    per_s = _rate_per_s(stage.rate)
    throughput = stage.concurrency / latency_s
    return StagePlan(
        name=stage.name,
        latency_s=latency_s,
        concurrency=stage.concurrency,
        rate_per_s=per_s,
        throughput_per_s=throughput if per_s is None else min(throughput, per_s),
        busy_s=0.0,
        suggested_concurrency=0,
    )


def ideal_s(calls: Iterable[tuple[Stage, int, float]]) -> float:
    """The least time the calls a run made could take (see ``RunReport``), from each stage's
    ``(stage, calls, total seconds)``: no schedule runs a stage's calls faster than their total
    duration over its concurrency, nor more of them than its rate allows after the burst."""
    ideal = 0.0
    for stage, count, total_s in calls:
        if not count:
            continue
        runner = stage.runner
        concurrency = (
            stage.concurrency
            if runner is None
            else int(getattr(runner, "concurrency_per_worker", 1))
            * max(1, int(getattr(runner, "n_workers", 1)))
        )
        busy = total_s / concurrency
        per_s = _rate_per_s(stage.rate)
        if per_s:
            busy = max(busy, max(0.0, count - _rate_burst(stage.rate)) / per_s)
        ideal = max(ideal, busy)
    return ideal
