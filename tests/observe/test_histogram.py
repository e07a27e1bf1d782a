"""Histogram: quantiles within the stated error, bounded memory, and clear errors."""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import slipstream as ss

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class TestHistogram:
    @given(
        samples=st.lists(st.floats(1e-5, 1e3, allow_nan=False), min_size=1, max_size=500),
        q=st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 1.0]),
    )
    def test_quantiles_within_the_stated_error(self, samples: list[float], q: float) -> None:
        """Any samples: each quantile is within 1% of the true sample quantile."""
        h = ss.Histogram(relative_error=0.01)
        for x in samples:
            h.add(x)
        true = sorted(samples)[math.floor(q * (len(samples) - 1))]
        assert abs(h.quantile(q) - true) <= 0.01 * true * 1.0001

    def test_memory_is_bounded_by_range_not_count(self) -> None:
        """A million samples between 1 us and 1 h use about a thousand buckets."""
        h = ss.Histogram()
        for i in range(1_000_000):
            h.add(1e-6 * (1.0001 ** (i % 150_000)))
        assert 1_000_000 == h.count
        assert len(h) < 1200

    def test_bad_arguments(self) -> None:
        """relative_error outside (0, 1) and q outside [0, 1] are named."""
        with pytest.raises(ValueError, match="'relative_error'"):
            ss.Histogram(relative_error=0)
        with pytest.raises(ValueError, match="'q'"):
            ss.Histogram().quantile(1.5)


class TestAddMany:
    @given(st.lists(st.floats(min_value=-1.0, max_value=3600.0, allow_nan=False), max_size=200))
    def test_add_many_is_add_per_value(self, values: list[float]) -> None:
        """One ``add_many`` leaves the same buckets, count, total and max as ``add`` each."""
        one, many = ss.Histogram(), ss.Histogram()
        for v in values:
            one.add(v)
        many.add_many(values)
        assert (many.count, many.max, many._buckets) == (one.count, one.max, one._buckets)
        assert math.isclose(many.total, one.total, rel_tol=1e-9, abs_tol=1e-12)


class TestMerge:
    @given(
        st.lists(st.floats(min_value=0.0, max_value=60.0), max_size=100),
        st.lists(st.floats(min_value=0.0, max_value=60.0), max_size=100),
    )
    def test_merging_is_adding_the_other_values(self, a: list[float], b: list[float]) -> None:
        """``merge`` of a histogram of ``b`` into one of ``a`` is a histogram of ``a + b``."""
        left, right, both = ss.Histogram(), ss.Histogram(), ss.Histogram()
        left.add_many(a)
        right.add_many(b)
        both.add_many(a + b)
        left.merge(right)
        assert (left.count, left.max, left._buckets) == (both.count, both.max, both._buckets)
        assert math.isclose(left.total, both.total, rel_tol=1e-9, abs_tol=1e-12)

    def test_other_buckets_or_another_type_are_refused_by_name(self) -> None:
        """Another relative error cannot merge exactly: a ValueError naming ``other``."""
        with pytest.raises(ValueError, match="'other' must have the same relative_error"):
            ss.Histogram(0.01).merge(ss.Histogram(0.05))
        with pytest.raises(TypeError, match="'other' must be a Histogram"):
            ss.Histogram().merge([0.1])  # type: ignore[arg-type]
