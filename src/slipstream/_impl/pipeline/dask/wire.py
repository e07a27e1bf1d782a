"""What travels between the client and the workers: batches pickled once, and the stage spec."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...flow.rate import Rate
from ...flow.retry import Retry

__all__ = ["Batch", "StageSpec", "pack", "unpicklable"]


class Batch:
    """Items (or outcomes) travelling as one opaque object, pickled once (``pack``): Dask
    walks list arguments and results element by element looking for futures, which cost
    about 50 us an item, and an object it cannot serialise inside a call breaks the call's
    connection (the run hung); a blob it just sends."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __reduce__(self) -> tuple[Any, ...]:
        return (Batch, (self.blob,))

    def unpack(self) -> list[Any]:
        items: list[Any] = pickle.loads(self.blob)
        return items


def _dumps(value: Any) -> bytes:
    """pickle, else cloudpickle (functions defined in ``__main__``, lambdas), as Dask does,
    without its error log for each failure (``pack`` reports them per item)."""
    try:
        return pickle.dumps(value, protocol=5)
    except Exception:
        pass  # out of the except block: cloudpickle's error, if any, is raised alone
    import cloudpickle  # type: ignore[import-untyped]  # a dependency of distributed

    return bytes(cloudpickle.dumps(value, protocol=5))


def pack(items: list[Any]) -> tuple[Batch, dict[int, Exception]]:
    """``items`` as one ``Batch``, leaving out (by index, with the error) those that cannot be
    pickled; each item is tried alone only when the whole batch fails."""
    try:
        return Batch(_dumps(items)), {}
    except Exception:
        pass
    good: list[Any] = []
    bad: dict[int, Exception] = {}
    for i, item in enumerate(items):
        try:
            _dumps(item)
        except Exception as exc:
            bad[i] = exc
        else:
            good.append(item)
    return Batch(_dumps(good)), bad


def unpicklable(stage: str, what: str, exc: Exception) -> TypeError:
    error = TypeError(f"stage {stage!r} runs on Dask workers, and {what} cannot be pickled")
    error.__cause__ = exc
    return error


@dataclass(frozen=True)
class StageSpec:
    """What a worker needs to run a stage; pickled into every task."""

    key: str  # unique per run and stage: the worker caches the setup's result under it
    name: str
    fn: Callable[..., Any]
    setup: Callable[[], Any] | None
    retry: Retry | None
    rate: Rate | None
    timeout_s: float | None
    concurrency: int
