"""Progress reporting for maps and streams: a rich progress bar (optional extra ``rich``)."""

from __future__ import annotations

from typing import Any

__all__ = ["ProgressBar"]


class ProgressBar:
    """A rich progress bar fed with ``(done, total)``; ``total`` may be None (endless input)."""

    __slots__ = ("_progress", "_task")

    def __init__(self, description: str = "slipstream") -> None:
        try:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
        except ImportError:  # pragma: no cover - exercised only without the extra
            raise ImportError(
                "progress=True needs the 'rich' package"
                "\nHINT: pip install 'slipstream[rich]', or pass on_progress=callback instead"
            ) from None
        self._progress: Any = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._task = self._progress.add_task(description, total=None)
        self._progress.start()

    def update(self, done: int, total: int | None) -> None:
        self._progress.update(self._task, completed=done, total=total)

    def close(self) -> None:
        self._progress.stop()
