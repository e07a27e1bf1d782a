"""prove: measure what the fixes buy: progress, streaming histograms, event-loop lag."""

from ._asgi import TimingMiddleware as TimingMiddleware
from ._histogram import Histogram as Histogram
from ._histogram import HistogramSummary as HistogramSummary
from ._loopwatch import BlockReport as BlockReport
from ._loopwatch import BusyThread as BusyThread
from ._loopwatch import LoopWatch as LoopWatch
from ._loopwatch import LoopWatchStatistics as LoopWatchStatistics
from ._monitor import Monitor as Monitor
from ._monitor import monitor as monitor
from ._progress import ProgressBar as ProgressBar

__all__ = [
    "BlockReport",
    "BusyThread",
    "Histogram",
    "HistogramSummary",
    "LoopWatch",
    "LoopWatchStatistics",
    "Monitor",
    "ProgressBar",
    "TimingMiddleware",
    "monitor",
]
