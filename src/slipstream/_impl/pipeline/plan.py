"""The pipeline's performance model: ``estimate`` before a run, ``ideal_s`` after one.

A stage sustains ``min(concurrency / latency, rate)`` items a second. Before a run that gives
the makespan, the bottleneck and the concurrency each stage needs to keep up (``Plan``); after
a run, the same bound over the calls the run made is the least time they could have taken
(``RunReport.ideal_s``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence

from .report import Plan, StagePlan
from .stage import Stage, _rate_burst, _rate_per_s

__all__ = ["estimate", "ideal_s"]


def estimate(
    stages: Sequence[Stage],
    n_items: int,
    given: Mapping[str, float],
    measured: Mapping[str, float],
) -> Plan:
    """The makespan of ``n_items`` (see ``Pipeline.plan``): a stage's latency is
    ``given[name]``, else ``measured[name]`` (the last run's), else its ``latency_s``."""
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
    for p in plans:
        suggested = max(1, math.ceil(target * p.latency_s * 1.1))
        if p.rate_per_s is not None and p.rate_per_s <= target:
            suggested = max(1, math.ceil(p.rate_per_s * p.latency_s * 1.1))
        if suggested > p.concurrency and p.throughput_per_s < target * 0.999:
            advice.append(
                f"raise {p.name!r} concurrency from {p.concurrency} to {suggested}: it "
                f"sustains {p.throughput_per_s:.1f}/s, the pipeline could do {target:.1f}/s"
            )
        final.append(
            dataclasses.replace(
                p, busy_s=n_items / p.throughput_per_s, suggested_concurrency=suggested
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
    )


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
