"""``ss.monitor``: measure every operation with bounded memory, report it, export it.

``Monitor`` keeps, per name, a count, errors, total and a ``Histogram`` (quantiles within 1%,
not a list of every sample kept forever), logs operations slower than a per-name threshold,
caps the number of names (extra names share an overflow bucket, with one warning), renders a
rich table, exports to Prometheus (extra ``prometheus``), and calls hooks (e.g. an OpenTelemetry
histogram) for every measurement.

Clocks: what an ``async with`` block or a decorated coroutine function takes is mostly waiting,
so it is read from the clock seam (``core.clock.clock``: ``time.monotonic`` in production, the
virtual loop's time under ``slipstream.testing.run(virtual_clock=True)``); so are the first and
last timestamps behind ``per_s``. A sync ``with`` block or decorated function is the work of one
call on this thread, during which no loop clock moves: it is timed with ``time.perf_counter``.
Both are read as a module attribute and called, as ``time.perf_counter()`` was, so the hot path
costs the same.

Example::

    with ss.monitor.measure("storage.get"):
        blob = storage.get(key)

    @ss.monitor.measure("classify")
    async def classify(doc): ...

    print(ss.monitor.report()["classify"]["p95_s"])
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, final

from ..core import clock as _clock
from ..core.checks import check_int, check_number, check_seconds
from .histogram import Histogram

__all__ = ["Monitor", "monitor"]

logger = logging.getLogger("slipstream.monitor")
F = TypeVar("F", bound=Callable[..., Any])
OVERFLOW = "__overflow__"


class _Stat:
    __slots__ = ("count", "errors", "first", "histogram", "last")

    def __init__(self, relative_error: float) -> None:
        self.count = 0
        self.errors = 0
        self.first = _clock.clock()
        self.last = self.first
        self.histogram = Histogram(relative_error)


@final
class Measurement:
    """One ``measure`` block: a sync and async context manager, and a decorator."""

    __slots__ = ("_monitor", "_name", "_start")

    def __init__(self, monitor: Monitor, name: str) -> None:
        self._monitor = monitor
        self._name = name
        self._start = 0.0

    def __enter__(self) -> Measurement:
        self._start = time.perf_counter()  # one call's work: no loop clock moves (module doc)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._monitor.record(self._name, time.perf_counter() - self._start, exc_info[1] is not None)

    async def __aenter__(self) -> Measurement:
        self._start = _clock.clock()  # waiting, mostly: the clock seam (module doc)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._monitor.record(self._name, _clock.clock() - self._start, exc_info[1] is not None)

    def __call__(self, fn: F) -> F:
        monitor, name = self._monitor, self._name
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                start = _clock.clock()  # waiting, mostly: the clock seam (module doc)
                failed = True
                try:
                    result = await fn(*args, **kwargs)
                    failed = False
                    return result
                finally:
                    monitor.record(name, _clock.clock() - start, failed)

            return async_wrapper  # type: ignore[return-value]  # same signature

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            failed = True
            try:
                result = fn(*args, **kwargs)
                failed = False
                return result
            finally:
                monitor.record(name, time.perf_counter() - start, failed)

        return sync_wrapper  # type: ignore[return-value]


@final
class Monitor:
    """Per-name timings, counters and gauges with bounded memory.

    Args:
        max_names: distinct names kept; further names are folded into ``__overflow__``.
        relative_error: quantile accuracy of each name's histogram.
    """

    def __init__(self, *, max_names: int = 10_000, relative_error: float = 0.01) -> None:
        max_names = check_int("max_names", max_names, minimum=1)
        self.max_names = max_names
        self.relative_error = check_number("relative_error", relative_error, above=0, below=1)
        self._stats: dict[str, _Stat] = {}
        self._counters: dict[str, float] = {}
        self._gauges: dict[str, float] = {}
        self._slow: dict[str, float] = {}
        self._hooks: list[Callable[[str, float, bool], Any]] = []
        self._lock = threading.Lock()
        self._warned = False

    # -- recording --------------------------------------------------------------------------

    def measure(self, name: str) -> Measurement:
        """Time a block (``with`` / ``async with``) or every call of a function (decorator)."""
        return Measurement(self, name)

    def _name(self, name: str, table: dict[str, Any]) -> str:
        if name in table or len(table) < self.max_names:
            return name
        if not self._warned:
            self._warned = True
            logger.warning(
                "more than %d distinct names measured; the rest are counted under %r "
                "(is a request id or a user id part of a name?)",
                self.max_names,
                OVERFLOW,
            )
        return OVERFLOW

    def record(self, name: str, seconds: float, error: bool = False) -> None:
        """Record one operation of ``seconds`` (``error`` if it raised)."""
        stat = self._stats.get(name)
        if stat is None:
            name, stat = self._stat(name)
        stat.count += 1
        stat.errors += error
        stat.last = _clock.clock()
        stat.histogram.add(seconds)
        threshold = self._slow.get(name)
        if threshold is not None and seconds > threshold:
            logger.warning("slow %s: %.3fs (threshold %.3fs)", name, seconds, threshold)
        for hook in self._hooks:
            hook(name, seconds, error)

    def record_many(self, name: str, seconds: list[float], errors: list[bool]) -> None:
        """Record one operation per value of ``seconds`` (``errors[i]``: the i-th raised): what
        ``record`` does for each, in one call (a pipeline stage records its calls per batch).

        Raises:
            ValueError: the two lists differ in length.
        """
        if len(seconds) != len(errors):
            raise ValueError(
                f"'errors' must have one flag per value of 'seconds' ({len(seconds)}), "
                f"got {len(errors)}"
            )
        if not seconds:
            return
        name, stat = self._stat(name)
        stat.count += len(seconds)
        stat.errors += sum(errors)
        stat.last = _clock.clock()
        stat.histogram.add_many(seconds)
        threshold = self._slow.get(name)
        if threshold is not None:
            for value in seconds:
                if value > threshold:
                    logger.warning("slow %s: %.3fs (threshold %.3fs)", name, value, threshold)
        for hook in self._hooks:
            for value, error in zip(seconds, errors, strict=True):
                hook(name, value, error)

    def wants_each(self, name: str) -> bool:
        """Does a ``name`` operation need recording one by one (a hook, or a slow threshold
        that logs each slow one)? Else a batch can be merged (``merge``)."""
        return bool(self._hooks) or name in self._slow

    def merge(self, name: str, histogram: Histogram, errors: int = 0) -> None:
        """Record the operations in ``histogram`` (``errors`` of them raised) under ``name``, as
        one merge: for callers that batch their measurements (a pipeline stage, per second).
        No hook sees them and no slow one is logged: callers ask ``wants_each`` first.

        Raises:
            TypeError: ``histogram`` is not a ``Histogram``, or ``errors`` not an int.
        """
        if not isinstance(histogram, Histogram):
            raise TypeError(f"'histogram' must be a Histogram, got {type(histogram).__name__}")
        errors = check_int("errors", errors, minimum=0)
        if not histogram.count:
            return
        name, stat = self._stat(name)
        stat.count += histogram.count
        stat.errors += errors
        stat.last = _clock.clock()
        if stat.histogram.compatible(histogram):
            stat.histogram.merge(histogram)
        else:  # other buckets: each bucket's midpoint, as many times as it counted
            for index, n in histogram._buckets.items():
                value = math.exp(index * histogram._gamma_log)
                stat.histogram.add_many([min(value, histogram.max)] * n)

    def _stat(self, name: str) -> tuple[str, _Stat]:
        """The name's statistics, made on first use, and the name they are kept under (past
        ``max_names``, the overflow's: what hooks and slow thresholds then see too)."""
        stat = self._stats.get(name)
        if stat is None:
            with self._lock:
                name = self._name(name, self._stats)
                stat = self._stats.get(name)
                if stat is None:
                    stat = self._stats[name] = _Stat(self.relative_error)
        return name, stat

    def count(self, name: str, n: float = 1) -> None:
        """Add ``n`` to a counter."""
        with self._lock:
            name = self._name(name, self._counters)
            self._counters[name] = self._counters.get(name, 0) + n

    def gauge(self, name: str, value: float) -> None:
        """Set a gauge."""
        with self._lock:
            self._gauges[self._name(name, self._gauges)] = value

    def set_slow(self, name: str, slow_s: float) -> None:
        """Log (warning) every ``name`` operation slower than ``slow_s``."""
        slow_s = check_seconds("slow_s", slow_s)
        self._slow[name] = slow_s

    def add_hook(self, hook: Callable[[str, float, bool], Any]) -> None:
        """Call ``hook(name, seconds, error)`` for every measurement (e.g. record it in an
        OpenTelemetry histogram: ``lambda n, s, e: hist.record(s, {"name": n})``)."""
        if not callable(hook):
            raise TypeError("'hook' must be callable")
        self._hooks.append(hook)

    # -- reading ----------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """Per name: count, errors, total_s, mean_s, p50_s, p95_s, p99_s, max_s, per_s;
        plus ``counters`` and ``gauges``."""
        out: dict[str, Any] = {}
        for name, stat in sorted(self._stats.items()):
            h = stat.histogram.summary()
            span = max(stat.last - stat.first, 1e-9)
            out[name] = {
                "count": stat.count,
                "errors": stat.errors,
                "total_s": h.total,
                "mean_s": h.mean,
                "p50_s": h.p50,
                "p95_s": h.p95,
                "p99_s": h.p99,
                "max_s": h.max,
                "per_s": stat.count / span if stat.count > 1 else 0.0,
            }
        out["counters"] = dict(self._counters)
        out["gauges"] = dict(self._gauges)
        return out

    def render(self) -> Any:
        """A rich ``Table`` of the report (extra ``rich``); print it with a rich console."""
        from rich.table import Table

        table = Table(title="slipstream monitor")
        for column in ("operation", "count", "errors", "mean", "p50", "p95", "p99", "max", "/s"):
            table.add_column(column, justify="left" if column == "operation" else "right")
        for name, row in self.report().items():
            if name in ("counters", "gauges"):
                continue
            ms = [f"{row[k] * 1000:.1f} ms" for k in ("mean_s", "p50_s", "p95_s", "p99_s", "max_s")]
            table.add_row(name, str(row["count"]), str(row["errors"]), *ms, f"{row['per_s']:.1f}")
        return table

    def prometheus_collector(self) -> Any:
        """A ``prometheus_client`` collector exposing every name as a summary with quantiles
        (register it: ``prometheus_client.REGISTRY.register(monitor.prometheus_collector())``)."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            SummaryMetricFamily,
        )

        monitor = self

        class Collector:
            def collect(self) -> Any:
                summary = SummaryMetricFamily(
                    "slipstream_operation_seconds", "Operation time", labels=["name"]
                )
                quantiles = GaugeMetricFamily(
                    "slipstream_operation_seconds_quantile",
                    "Operation time quantiles (1% relative error)",
                    labels=["name", "quantile"],
                )
                errors = CounterMetricFamily(
                    "slipstream_operation_errors", "Operations that raised", labels=["name"]
                )
                for name, row in monitor.report().items():
                    if name in ("counters", "gauges"):
                        continue
                    summary.add_metric([name], row["count"], row["total_s"])
                    for q in ("0.5", "0.95", "0.99"):
                        key = {"0.5": "p50_s", "0.95": "p95_s", "0.99": "p99_s"}[q]
                        quantiles.add_metric([name, q], row[key])
                    errors.add_metric([name], row["errors"])
                yield summary
                yield quantiles
                yield errors

        return Collector()

    def reset(self) -> None:
        """Forget everything measured."""
        with self._lock:
            self._stats.clear()
            self._counters.clear()
            self._gauges.clear()
            self._warned = False

    def __repr__(self) -> str:
        return f"<Monitor names={len(self._stats)} max_names={self.max_names}>"


monitor = Monitor()
"""The process-wide monitor: ``ss.monitor.measure(...)``."""
