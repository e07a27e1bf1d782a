"""Results: a map's outcomes in input order, and raising every failure at once on request."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar, final, overload

from .errors import FailedItems
from .outcome import Outcome, Summary

__all__ = ["Results", "raise_failures"]

T = TypeVar("T")
R = TypeVar("R")


def raise_failures(outcomes: Iterable[Outcome[Any, Any]], message: str | None = None) -> None:
    """Raise ``FailedItems`` (an ``ExceptionGroup``) of every failed outcome; return if none."""
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        errors = [o.error for o in failed if o.error is not None]
        raise FailedItems(message or f"{len(failed)} item(s) failed", errors, failed)


@final
class Results(Sequence[Outcome[T, R]]):
    """Every outcome of ``ss.map`` in input order, with a ``summary``."""

    __slots__ = ("_outcomes", "summary")

    def __init__(self, outcomes: list[Outcome[T, R]], summary: Summary) -> None:
        self._outcomes = outcomes
        self.summary = summary

    @overload
    def __getitem__(self, index: int) -> Outcome[T, R]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Outcome[T, R]]: ...
    def __getitem__(self, index: int | slice) -> Outcome[T, R] | Sequence[Outcome[T, R]]:
        return self._outcomes[index]

    def __len__(self) -> int:
        return len(self._outcomes)

    def __iter__(self) -> Iterator[Outcome[T, R]]:
        return iter(self._outcomes)

    @property
    def failures(self) -> list[Outcome[T, R]]:
        return [o for o in self._outcomes if o.error is not None]

    @property
    def ok(self) -> bool:
        return self.summary.failed == 0

    def values(self) -> list[R]:
        """All values in input order; raises ``FailedItems`` if any item failed."""
        self.raise_failures()
        return [o._value for o in self._outcomes]  # type: ignore[misc]  # all succeeded

    def raise_failures(self) -> None:
        """Raise ``FailedItems`` (an ``ExceptionGroup``) of every failure; return if none."""
        raise_failures(self._outcomes)

    def __repr__(self) -> str:
        return f"<Results {self.summary}>"
