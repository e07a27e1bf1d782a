"""prove: measure what the fixes buy (progress now; metrics and reports in later releases)."""

from ._progress import ProgressBar as ProgressBar

__all__ = ["ProgressBar"]
