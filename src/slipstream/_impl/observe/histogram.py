"""A streaming histogram with bounded memory and a stated relative error (DDSketch-style).

Keeping every sample to compute p95/p99 grows without bound. ``Histogram`` keeps one counter
per logarithmic bucket: a value ``x > 0`` goes to bucket ``ceil(log(x) / log(g))``
with ``g = (1 + a) / (1 - a)``, and a quantile is answered with the bucket's midpoint, within a
relative error ``a`` (default 1%) of the true sample quantile. From 1 us to 1 hour that is at most
~1,100 buckets, whatever the number of samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import final

from ..core.checks import check_number

__all__ = ["Histogram", "HistogramSummary"]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class HistogramSummary:
    count: int
    total: float
    mean: float
    p50: float
    p95: float
    p99: float
    max: float


@final
class Histogram:
    """Counts of values in logarithmic buckets; quantiles within ``relative_error``.

    Values <= ``min_value`` (default 1 us for seconds) share the lowest bucket.
    """

    __slots__ = ("_buckets", "_gamma_log", "_min", "count", "max", "relative_error", "total")

    def __init__(self, relative_error: float = 0.01, min_value: float = 1e-6) -> None:
        relative_error = check_number("relative_error", relative_error, above=0, below=1)
        min_value = check_number("min_value", min_value, above=0)
        self.relative_error = relative_error
        self._gamma_log = math.log((1 + relative_error) / (1 - relative_error))
        self._min = min_value
        self._buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, value: float) -> None:
        """Record one value (negative values count as 0)."""
        self.count += 1
        if value > 0:
            self.total += value
            if value > self.max:
                self.max = value
        index = math.ceil(math.log(max(value, self._min)) / self._gamma_log)
        self._buckets[index] = self._buckets.get(index, 0) + 1

    def add_many(self, values: list[float]) -> None:
        """Record each of ``values``: what ``add`` does, in one call (the loop's names bound
        once: about half the cost of calling ``add`` per value)."""
        if not values:
            return
        buckets, get, log, ceil = self._buckets, self._buckets.get, math.log, math.ceil
        floor, gamma_log = self._min, self._gamma_log
        total, top = self.total, self.max
        for value in values:
            if value > 0:
                total += value
                if value > top:
                    top = value
            index = ceil(log(value if value > floor else floor) / gamma_log)
            buckets[index] = get(index, 0) + 1
        self.count += len(values)
        self.total, self.max = total, top

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s values to this one (buckets, count, total, max): what a batch
        recorded once goes into two histograms without being bucketed twice.

        Raises:
            TypeError: ``other`` is not a ``Histogram``.
            ValueError: ``other`` has another ``relative_error`` or ``min_value``.
        """
        if not isinstance(other, Histogram):
            raise TypeError(f"'other' must be a Histogram, got {type(other).__name__}")
        if not self.compatible(other):
            raise ValueError(
                "'other' must have the same relative_error and min_value to be merged, got "
                f"{other.relative_error}/{other._min} for {self.relative_error}/{self._min}"
            )
        buckets, get = self._buckets, self._buckets.get
        for index, n in other._buckets.items():
            buckets[index] = get(index, 0) + n
        self.count += other.count
        self.total += other.total
        if other.max > self.max:
            self.max = other.max

    def compatible(self, other: Histogram) -> bool:
        """Does ``other`` have this histogram's buckets (so ``merge`` is exact)?"""
        return other._gamma_log == self._gamma_log and other._min == self._min

    def quantile(self, q: float) -> float:
        """The value below which a fraction ``q`` of the samples fall (0 when empty)."""
        if not 0 <= q <= 1:
            raise ValueError(f"'q' must be in [0, 1], got {q!r}")
        if not self.count:
            return 0.0
        rank = q * (self.count - 1)
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen > rank:
                # the midpoint (in relative terms) of the bucket (g^(i-1), g^i]
                value = 2 * math.exp(index * self._gamma_log) / (1 + math.exp(self._gamma_log))
                return min(value, self.max) if self.max else value
        return self.max

    def summary(self) -> HistogramSummary:
        return HistogramSummary(
            count=self.count,
            total=self.total,
            mean=self.total / self.count if self.count else 0.0,
            p50=self.quantile(0.5),
            p95=self.quantile(0.95),
            p99=self.quantile(0.99),
            max=self.max,
        )

    def __len__(self) -> int:
        """How many buckets are in use (the memory bound)."""
        return len(self._buckets)
