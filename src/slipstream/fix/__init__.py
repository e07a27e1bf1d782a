"""fix: the primitives that replace the seeds' hand-rolled performance code.

Flow control: ``map``/``stream`` over limiter -> breaker -> call -> retry.
Resources: ``Registry`` creates expensive clients once and closes them.
Caches: ``Cache`` / ``@cached`` with single flight, in memory, SQLite or Redis.
Pipelines: ``Pipeline`` chains ``Stage`` streams from a source to a ``BatchWriter`` sink, with a
``Checkpoint`` so a run can pause, crash and resume without losing or duplicating an item.
"""

from ._breaker import BreakerState as BreakerState
from ._breaker import BreakerStatistics as BreakerStatistics
from ._breaker import CircuitBreaker as CircuitBreaker
from ._cache import Cache as Cache
from ._cache import CacheStatistics as CacheStatistics
from ._cached import CachedFunction as CachedFunction
from ._cached import cached as cached
from ._checkpoint import Checkpoint as Checkpoint
from ._checkpoint import FailedItem as FailedItem
from ._checkpoint import RunState as RunState
from ._checkpoint import RunStatus as RunStatus
from ._dask import DaskRunner as DaskRunner
from ._dask import RemoteError as RemoteError
from ._flow import Stream as Stream
from ._flow import map as map  # the public name is fixed: ss.map
from ._flow import stream as stream
from ._loader import DataLoader as DataLoader
from ._loader import DataLoaderStatistics as DataLoaderStatistics
from ._loader import prefetch as prefetch
from ._maintenance import chunked_delete as chunked_delete
from ._maintenance import ensure_alive as ensure_alive
from ._maintenance import run_long_statement as run_long_statement
from ._offload import nonblocking as nonblocking
from ._offload import offload as offload
from ._outcome import Outcome as Outcome
from ._outcome import Results as Results
from ._outcome import Summary as Summary
from ._outcome import raise_failures as raise_failures
from ._pipeline import Pipeline as Pipeline
from ._pools import PoolSettings as PoolSettings
from ._rate import Limiter as Limiter
from ._rate import Rate as Rate
from ._rate import RateLimiter as RateLimiter
from ._rate import RateLimiterStatistics as RateLimiterStatistics
from ._redis_rate import RedisRateLimiter as RedisRateLimiter
from ._registry import ProviderStatistics as ProviderStatistics
from ._registry import Registry as Registry
from ._registry import default_registry as default_registry
from ._report import PipelineProgress as PipelineProgress
from ._report import Plan as Plan
from ._report import RunReport as RunReport
from ._report import StagePlan as StagePlan
from ._report import StageReport as StageReport
from ._retry import Retry as Retry
from ._retry import RetryBudget as RetryBudget
from ._retry import is_transient as is_transient
from ._retry import retry as retry
from ._retry import retry_after_s as retry_after_s
from ._sinks import asyncpg_flush as asyncpg_flush
from ._sinks import sqlalchemy_flush as sqlalchemy_flush
from ._sinks import sqlite_flush as sqlite_flush
from ._sources import DirectorySource as DirectorySource
from ._sources import FileItem as FileItem
from ._sources import QuerySource as QuerySource
from ._sources import query_source as query_source
from ._stage import Item as Item
from ._stage import Stage as Stage
from ._stage import current_item as current_item
from ._taskset import TaskSet as TaskSet
from ._taskset import TaskSetStatistics as TaskSetStatistics
from ._transient import CommitOutcomeUnknown as CommitOutcomeUnknown
from ._writer import BatchWriter as BatchWriter
from ._writer import SyncBatchWriter as SyncBatchWriter
from ._writer import WriterStatistics as WriterStatistics
from ._writer import is_connection_error as is_connection_error

__all__ = [
    "BatchWriter",
    "BreakerState",
    "BreakerStatistics",
    "Cache",
    "CacheStatistics",
    "CachedFunction",
    "Checkpoint",
    "CircuitBreaker",
    "CommitOutcomeUnknown",
    "DaskRunner",
    "DataLoader",
    "DataLoaderStatistics",
    "DirectorySource",
    "FailedItem",
    "FileItem",
    "Item",
    "Limiter",
    "Outcome",
    "Pipeline",
    "PipelineProgress",
    "Plan",
    "PoolSettings",
    "ProviderStatistics",
    "QuerySource",
    "Rate",
    "RateLimiter",
    "RateLimiterStatistics",
    "RedisRateLimiter",
    "Registry",
    "RemoteError",
    "Results",
    "Retry",
    "RetryBudget",
    "RunReport",
    "RunState",
    "RunStatus",
    "Stage",
    "StagePlan",
    "StageReport",
    "Stream",
    "Summary",
    "SyncBatchWriter",
    "TaskSet",
    "TaskSetStatistics",
    "WriterStatistics",
    "asyncpg_flush",
    "cached",
    "chunked_delete",
    "current_item",
    "default_registry",
    "ensure_alive",
    "is_connection_error",
    "is_transient",
    "map",
    "nonblocking",
    "offload",
    "prefetch",
    "query_source",
    "raise_failures",
    "retry",
    "retry_after_s",
    "run_long_statement",
    "sqlalchemy_flush",
    "sqlite_flush",
    "stream",
]
