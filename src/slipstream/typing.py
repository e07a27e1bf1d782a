"""The types you annotate with: statistics snapshots, reports and plans, and the protocols a
custom backend implements. Nothing here needs constructing by hand::

    from slipstream.typing import CacheStatistics, RunReport

    def log_run(report: RunReport, cache: CacheStatistics) -> None: ...

The primitives themselves (``Cache``, ``Pipeline``, ``Retry``...) live in ``slipstream``; the
value types below are also there, so ``ss.RunReport`` and ``slipstream.typing.RunReport`` are
one class.
"""

from ._impl.cache.cache import CacheStatistics as CacheStatistics
from ._impl.cache.serializers import Serializer as Serializer
from ._impl.cache.store import Store as Store
from ._impl.cache.store import Target as Target
from ._impl.cache.store import Terms as Terms
from ._impl.clients.registry import ProviderStatistics as ProviderStatistics
from ._impl.core.outcome import Outcome as Outcome
from ._impl.core.outcome import Summary as Summary
from ._impl.core.publish import publish as _publish
from ._impl.core.results import Results as Results
from ._impl.core.rules.rule import Rule as Rule
from ._impl.core.rules.rule import Severity as Severity
from ._impl.db.loader import DataLoaderStatistics as DataLoaderStatistics
from ._impl.db.sinks import BatchFlush as BatchFlush
from ._impl.db.sinks import ManagedFlush as ManagedFlush
from ._impl.db.sinks import SyncManagedFlush as SyncManagedFlush
from ._impl.db.writer import WriterStatistics as WriterStatistics
from ._impl.detect.detectors import QueryFinding as QueryFinding
from ._impl.detect.detectors import SlowQuery as SlowQuery
from ._impl.detect.detectors import WatchReport as WatchReport
from ._impl.flow.adaptive import AdaptiveRateStatistics as AdaptiveRateStatistics
from ._impl.flow.breaker import BreakerState as BreakerState
from ._impl.flow.breaker import BreakerStatistics as BreakerStatistics
from ._impl.flow.poll import PollStatistics as PollStatistics
from ._impl.flow.rate import Limiter as Limiter
from ._impl.flow.rate import RateLimiterStatistics as RateLimiterStatistics
from ._impl.loop.lanes import OffloadStatistics as OffloadStatistics
from ._impl.loop.taskset import TaskSetStatistics as TaskSetStatistics
from ._impl.loop.watch import BlockReport as BlockReport
from ._impl.loop.watch import BusyThread as BusyThread
from ._impl.loop.watch import LoopWatchStatistics as LoopWatchStatistics
from ._impl.observe.histogram import HistogramSummary as HistogramSummary
from ._impl.observe.monitor import Measurement as Measurement
from ._impl.pipeline.checkpoint import FailedItem as FailedItem
from ._impl.pipeline.checkpoint import RunState as RunState
from ._impl.pipeline.checkpoint import RunStatus as RunStatus
from ._impl.pipeline.checkpoint.records import ItemRow as ItemRow
from ._impl.pipeline.checkpoint.records import Owner as Owner
from ._impl.pipeline.checkpoint.records import StoredRun as StoredRun
from ._impl.pipeline.checkpoint.store import CheckpointStore as CheckpointStore
from ._impl.pipeline.report import PipelineProgress as PipelineProgress
from ._impl.pipeline.report import Plan as Plan
from ._impl.pipeline.report import RunReport as RunReport
from ._impl.pipeline.report import StagePlan as StagePlan
from ._impl.pipeline.report import StageReport as StageReport
from ._impl.scan.model import ChainStep as ChainStep
from ._impl.scan.model import Finding as Finding

__all__ = [
    "AdaptiveRateStatistics",
    "BatchFlush",
    "BlockReport",
    "BreakerState",
    "BreakerStatistics",
    "BusyThread",
    "CacheStatistics",
    "ChainStep",
    "CheckpointStore",
    "DataLoaderStatistics",
    "FailedItem",
    "Finding",
    "HistogramSummary",
    "ItemRow",
    "Limiter",
    "LoopWatchStatistics",
    "ManagedFlush",
    "Measurement",
    "OffloadStatistics",
    "Outcome",
    "Owner",
    "PipelineProgress",
    "Plan",
    "PollStatistics",
    "ProviderStatistics",
    "QueryFinding",
    "RateLimiterStatistics",
    "Results",
    "Rule",
    "RunReport",
    "RunState",
    "RunStatus",
    "Serializer",
    "Severity",
    "SlowQuery",
    "StagePlan",
    "StageReport",
    "Store",
    "StoredRun",
    "Summary",
    "SyncManagedFlush",
    "Target",
    "TaskSetStatistics",
    "Terms",
    "WatchReport",
    "WriterStatistics",
]

_publish(globals(), __all__, __name__)
