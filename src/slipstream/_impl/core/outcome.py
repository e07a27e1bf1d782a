"""Outcomes: one per input item, with the value or the exception; an error is never ``None``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar, final

__all__ = ["Outcome", "Summary"]

T = TypeVar("T")
R = TypeVar("R")


@final
class Outcome(Generic[T, R]):
    """What became of one input item.

    Attributes:
        item: the input item.
        index: its position in the input (0-based).
        error: the exception of the last attempt (with ``__traceback__``), or None on success.
        attempts: calls made for this item (0 when a breaker refused it before any call).
        elapsed_s: seconds from the first attempt (or wait) to the outcome.

    ``value`` returns the result, or raises ``error`` when the item failed.
    """

    __slots__ = ("_value", "attempts", "elapsed_s", "error", "index", "item")

    def __init__(
        self,
        item: T,
        index: int,
        value: R | None,
        error: Exception | None,
        attempts: int,
        elapsed_s: float,
    ) -> None:
        self.item = item
        self.index = index
        self._value = value
        self.error = error
        self.attempts = attempts
        self.elapsed_s = elapsed_s

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def value(self) -> R:
        """The result; raises the item's exception if it failed."""
        if self.error is not None:
            raise self.error
        return self._value  # type: ignore[return-value]  # set whenever error is None

    def __repr__(self) -> str:
        body = f"value={self._value!r}" if self.error is None else f"error={self.error!r}"
        return (
            f"Outcome(index={self.index}, item={self.item!r}, {body}, "
            f"attempts={self.attempts}, elapsed_s={self.elapsed_s:.6f})"
        )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """Totals of a map or stream.

    ``retries`` counts extra attempts; ``retried`` the items that needed any;
    ``rate_wait_s`` the summed time calls spent waiting for the rate limiter;
    ``rejected`` the items a circuit breaker refused.
    """

    total: int
    ok: int
    failed: int
    retried: int
    retries: int
    rejected: int
    rate_wait_s: float
    elapsed_s: float

    def __str__(self) -> str:
        return (
            f"{self.total} items: {self.ok} ok, {self.failed} failed "
            f"({self.rejected} by the breaker), {self.retries} retries over {self.retried} items, "
            f"{self.rate_wait_s:.2f}s of item time waiting on the rate limit, "
            f"{self.elapsed_s:.2f}s in all"
        )
