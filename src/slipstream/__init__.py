"""slipstream: make async backends and data pipelines fast without making them fragile.

find where code loses time (``slipstream scan``, ``ss.scan``), fix it with the primitives
exported here (``map``, ``Cache``, ``DataLoader``, ``BatchWriter``, ``offload``, ``Pipeline``...),
and prove what the fix bought (``Monitor``, ``Histogram``, ``LoopWatch``)::

    import slipstream as ss
    results = await ss.map(fetch, urls, concurrency=20, rate=ss.Rate(per_second=50))

Public modules: ``slipstream`` (everything below), ``slipstream.exceptions`` (the error tree),
``slipstream.typing`` (statistics, reports and protocols to annotate with) and
``slipstream.testing`` (virtual time and test switches). The implementation is private, one
package per concept under ``slipstream._impl``.
"""

from ._impl.cache.cache import Cache as Cache
from ._impl.cache.cache import CacheStatistics as CacheStatistics
from ._impl.cache.decorator import CachedFunction as CachedFunction
from ._impl.cache.decorator import cached as cached
from ._impl.clients.pools import PoolSettings as PoolSettings
from ._impl.clients.registry import ProviderStatistics as ProviderStatistics
from ._impl.clients.registry import Registry as Registry
from ._impl.clients.registry import default_registry as default_registry
from ._impl.core.errors import CheckpointError as CheckpointError
from ._impl.core.errors import CircuitOpen as CircuitOpen
from ._impl.core.errors import ConfigError as ConfigError
from ._impl.core.errors import FailedItems as FailedItems
from ._impl.core.errors import FlushFailed as FlushFailed
from ._impl.core.errors import InputError as InputError
from ._impl.core.errors import ItemCancelled as ItemCancelled
from ._impl.core.errors import NotReady as NotReady
from ._impl.core.errors import PipelineError as PipelineError
from ._impl.core.errors import PollTimeout as PollTimeout
from ._impl.core.errors import RegistryClosed as RegistryClosed
from ._impl.core.errors import RemoteError as RemoteError
from ._impl.core.errors import RowsRejected as RowsRejected
from ._impl.core.errors import Skip as Skip
from ._impl.core.errors import SlipstreamError as SlipstreamError
from ._impl.core.errors import TaskSetFull as TaskSetFull
from ._impl.core.outcome import Outcome as Outcome
from ._impl.core.outcome import Summary as Summary
from ._impl.core.publish import publish as _publish
from ._impl.core.results import Results as Results
from ._impl.core.results import raise_failures as raise_failures
from ._impl.core.transient import CommitOutcomeUnknown as CommitOutcomeUnknown
from ._impl.core.version import __version__ as __version__
from ._impl.db.loader import DataLoader as DataLoader
from ._impl.db.loader import DataLoaderStatistics as DataLoaderStatistics
from ._impl.db.loader import prefetch as prefetch
from ._impl.db.maintenance import chunked_delete as chunked_delete
from ._impl.db.maintenance import ensure_alive as ensure_alive
from ._impl.db.maintenance import run_long_statement as run_long_statement
from ._impl.db.sequential import SequentialLoadWarning as SequentialLoadWarning
from ._impl.db.sinks import asyncpg_flush as asyncpg_flush
from ._impl.db.sinks import sqlalchemy_flush as sqlalchemy_flush
from ._impl.db.sinks import sqlite_flush as sqlite_flush
from ._impl.db.writer import BatchWriter as BatchWriter
from ._impl.db.writer import SyncBatchWriter as SyncBatchWriter
from ._impl.db.writer import WriterStatistics as WriterStatistics
from ._impl.db.writer import is_connection_error as is_connection_error
from ._impl.detect.detectors import QueryFinding as QueryFinding
from ._impl.detect.detectors import SlowQuery as SlowQuery
from ._impl.detect.detectors import WatchReport as WatchReport
from ._impl.detect.mongowatch import mongo_listener as mongo_listener
from ._impl.detect.scope import Watch as Watch
from ._impl.detect.watchers import instrument as instrument
from ._impl.detect.watchers import watch as watch
from ._impl.flow.adaptive import AdaptiveRate as AdaptiveRate
from ._impl.flow.adaptive import AdaptiveRateStatistics as AdaptiveRateStatistics
from ._impl.flow.breaker import BreakerState as BreakerState
from ._impl.flow.breaker import BreakerStatistics as BreakerStatistics
from ._impl.flow.breaker import CircuitBreaker as CircuitBreaker
from ._impl.flow.map import Stream as Stream
from ._impl.flow.map import map as map  # the public name is fixed: ss.map
from ._impl.flow.map import stream as stream
from ._impl.flow.poll import Poller as Poller
from ._impl.flow.poll import PollStatistics as PollStatistics
from ._impl.flow.poll import poll as poll
from ._impl.flow.rate import Limiter as Limiter
from ._impl.flow.rate import Rate as Rate
from ._impl.flow.rate import RateLimiter as RateLimiter
from ._impl.flow.rate import RateLimiterStatistics as RateLimiterStatistics
from ._impl.flow.redis_adaptive import RedisAdaptiveRate as RedisAdaptiveRate
from ._impl.flow.redis_rate import RedisRateLimiter as RedisRateLimiter
from ._impl.flow.retry import Retry as Retry
from ._impl.flow.retry import RetryBudget as RetryBudget
from ._impl.flow.retry import is_transient as is_transient
from ._impl.flow.retry import retry as retry
from ._impl.flow.retry import retry_after_s as retry_after_s
from ._impl.loop.lanes import OffloadStatistics as OffloadStatistics
from ._impl.loop.lanes import offload_statistics as offload_statistics
from ._impl.loop.offload import nonblocking as nonblocking
from ._impl.loop.offload import offload as offload
from ._impl.loop.taskset import TaskSet as TaskSet
from ._impl.loop.taskset import TaskSetStatistics as TaskSetStatistics
from ._impl.loop.watch import BlockReport as BlockReport
from ._impl.loop.watch import BusyThread as BusyThread
from ._impl.loop.watch import LoopWatch as LoopWatch
from ._impl.loop.watch import LoopWatchStatistics as LoopWatchStatistics
from ._impl.observe.asgi import TimingMiddleware as TimingMiddleware
from ._impl.observe.histogram import Histogram as Histogram
from ._impl.observe.histogram import HistogramSummary as HistogramSummary
from ._impl.observe.monitor import Monitor as Monitor
from ._impl.observe.monitor import monitor as monitor
from ._impl.pipeline.checkpoint import Checkpoint as Checkpoint
from ._impl.pipeline.checkpoint import FailedItem as FailedItem
from ._impl.pipeline.checkpoint import RunState as RunState
from ._impl.pipeline.checkpoint import RunStatus as RunStatus
from ._impl.pipeline.dask.runner import DaskRunner as DaskRunner
from ._impl.pipeline.pipeline import Pipeline as Pipeline
from ._impl.pipeline.report import PipelineProgress as PipelineProgress
from ._impl.pipeline.report import Plan as Plan
from ._impl.pipeline.report import RunReport as RunReport
from ._impl.pipeline.report import StagePlan as StagePlan
from ._impl.pipeline.report import StageReport as StageReport
from ._impl.pipeline.sources import DirectorySource as DirectorySource
from ._impl.pipeline.sources import FileItem as FileItem
from ._impl.pipeline.sources import QuerySource as QuerySource
from ._impl.pipeline.sources import query_source as query_source
from ._impl.pipeline.stage import Item as Item
from ._impl.pipeline.stage import Stage as Stage
from ._impl.pipeline.stage import current_item as current_item
from ._impl.scan import scan as scan
from ._impl.web.cache_control import CacheControl as CacheControl
from ._impl.web.cache_control import cache_control as cache_control
from ._impl.web.db_timing import QueryTiming as QueryTiming
from ._impl.web.lifespan import Lifespan as Lifespan
from ._impl.web.scope import RequestLoader as RequestLoader
from ._impl.web.scope import RequestScope as RequestScope
from ._impl.web.scope import request_loader as request_loader
from ._impl.web.scope import request_scope as request_scope

__all__ = [
    "AdaptiveRate",
    "AdaptiveRateStatistics",
    "BatchWriter",
    "BlockReport",
    "BreakerState",
    "BreakerStatistics",
    "BusyThread",
    "Cache",
    "CacheControl",
    "CacheStatistics",
    "CachedFunction",
    "Checkpoint",
    "CheckpointError",
    "CircuitBreaker",
    "CircuitOpen",
    "CommitOutcomeUnknown",
    "ConfigError",
    "DaskRunner",
    "DataLoader",
    "DataLoaderStatistics",
    "DirectorySource",
    "FailedItem",
    "FailedItems",
    "FileItem",
    "FlushFailed",
    "Histogram",
    "HistogramSummary",
    "InputError",
    "Item",
    "ItemCancelled",
    "Lifespan",
    "Limiter",
    "LoopWatch",
    "LoopWatchStatistics",
    "Monitor",
    "NotReady",
    "OffloadStatistics",
    "Outcome",
    "Pipeline",
    "PipelineError",
    "PipelineProgress",
    "Plan",
    "PollStatistics",
    "PollTimeout",
    "Poller",
    "PoolSettings",
    "ProviderStatistics",
    "QueryFinding",
    "QuerySource",
    "QueryTiming",
    "Rate",
    "RateLimiter",
    "RateLimiterStatistics",
    "RedisAdaptiveRate",
    "RedisRateLimiter",
    "Registry",
    "RegistryClosed",
    "RemoteError",
    "RequestLoader",
    "RequestScope",
    "Results",
    "Retry",
    "RetryBudget",
    "RowsRejected",
    "RunReport",
    "RunState",
    "RunStatus",
    "SequentialLoadWarning",
    "Skip",
    "SlipstreamError",
    "SlowQuery",
    "Stage",
    "StagePlan",
    "StageReport",
    "Stream",
    "Summary",
    "SyncBatchWriter",
    "TaskSet",
    "TaskSetFull",
    "TaskSetStatistics",
    "TimingMiddleware",
    "Watch",
    "WatchReport",
    "WriterStatistics",
    "asyncpg_flush",
    "cache_control",
    "cached",
    "chunked_delete",
    "current_item",
    "default_registry",
    "ensure_alive",
    "instrument",
    "is_connection_error",
    "is_transient",
    "map",
    "mongo_listener",
    "monitor",
    "nonblocking",
    "offload",
    "offload_statistics",
    "poll",
    "prefetch",
    "query_source",
    "raise_failures",
    "request_loader",
    "request_scope",
    "retry",
    "retry_after_s",
    "run_long_statement",
    "scan",
    "sqlalchemy_flush",
    "sqlite_flush",
    "stream",
    "watch",
]


_publish(globals(), __all__, __name__)
