"""slipstream: make async backends and data pipelines fast without making them fragile.

The package is laid out as the product is: ``slipstream.fix`` holds the primitives that replace
hand-rolled performance code, ``slipstream.prove`` measures what they buy. Everything users need
is re-exported here::

    import slipstream as ss
    results = await ss.map(fetch, urls, concurrency=20, rate=ss.Rate(per_second=50))
"""

import importlib.metadata as _metadata

from ._exceptions import CheckpointError as CheckpointError
from ._exceptions import CircuitOpen as CircuitOpen
from ._exceptions import FailedItems as FailedItems
from ._exceptions import FlushFailed as FlushFailed
from ._exceptions import InputError as InputError
from ._exceptions import ItemCancelled as ItemCancelled
from ._exceptions import PipelineError as PipelineError
from ._exceptions import RegistryClosed as RegistryClosed
from ._exceptions import Skip as Skip
from ._exceptions import SlipstreamError as SlipstreamError
from ._exceptions import TaskSetFull as TaskSetFull
from .find import scan as scan
from .fix import BatchWriter as BatchWriter
from .fix import BreakerState as BreakerState
from .fix import BreakerStatistics as BreakerStatistics
from .fix import Cache as Cache
from .fix import CachedFunction as CachedFunction
from .fix import CacheStatistics as CacheStatistics
from .fix import Checkpoint as Checkpoint
from .fix import CircuitBreaker as CircuitBreaker
from .fix import CommitOutcomeUnknown as CommitOutcomeUnknown
from .fix import DaskRunner as DaskRunner
from .fix import DataLoader as DataLoader
from .fix import DataLoaderStatistics as DataLoaderStatistics
from .fix import DirectorySource as DirectorySource
from .fix import FailedItem as FailedItem
from .fix import FileItem as FileItem
from .fix import Item as Item
from .fix import Limiter as Limiter
from .fix import Outcome as Outcome
from .fix import Pipeline as Pipeline
from .fix import PipelineProgress as PipelineProgress
from .fix import Plan as Plan
from .fix import PoolSettings as PoolSettings
from .fix import ProviderStatistics as ProviderStatistics
from .fix import QuerySource as QuerySource
from .fix import Rate as Rate
from .fix import RateLimiter as RateLimiter
from .fix import RateLimiterStatistics as RateLimiterStatistics
from .fix import RedisRateLimiter as RedisRateLimiter
from .fix import Registry as Registry
from .fix import RemoteError as RemoteError
from .fix import Results as Results
from .fix import Retry as Retry
from .fix import RetryBudget as RetryBudget
from .fix import RunReport as RunReport
from .fix import RunState as RunState
from .fix import RunStatus as RunStatus
from .fix import Stage as Stage
from .fix import StagePlan as StagePlan
from .fix import StageReport as StageReport
from .fix import Stream as Stream
from .fix import Summary as Summary
from .fix import SyncBatchWriter as SyncBatchWriter
from .fix import TaskSet as TaskSet
from .fix import TaskSetStatistics as TaskSetStatistics
from .fix import WriterStatistics as WriterStatistics
from .fix import asyncpg_flush as asyncpg_flush
from .fix import cached as cached
from .fix import chunked_delete as chunked_delete
from .fix import current_item as current_item
from .fix import default_registry as default_registry
from .fix import ensure_alive as ensure_alive
from .fix import is_connection_error as is_connection_error
from .fix import is_transient as is_transient
from .fix import map as map  # the public name is fixed: ss.map
from .fix import nonblocking as nonblocking
from .fix import offload as offload
from .fix import prefetch as prefetch
from .fix import query_source as query_source
from .fix import raise_failures as raise_failures
from .fix import retry as retry
from .fix import retry_after_s as retry_after_s
from .fix import run_long_statement as run_long_statement
from .fix import sqlalchemy_flush as sqlalchemy_flush
from .fix import sqlite_flush as sqlite_flush
from .fix import stream as stream
from .prove import BlockReport as BlockReport
from .prove import BusyThread as BusyThread
from .prove import Histogram as Histogram
from .prove import HistogramSummary as HistogramSummary
from .prove import LoopWatch as LoopWatch
from .prove import LoopWatchStatistics as LoopWatchStatistics
from .prove import Monitor as Monitor
from .prove import TimingMiddleware as TimingMiddleware
from .prove import monitor as monitor

try:  # one version, pyproject.toml's
    __version__ = _metadata.version("slipstream")
except _metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "BatchWriter",
    "BlockReport",
    "BreakerState",
    "BreakerStatistics",
    "BusyThread",
    "Cache",
    "CacheStatistics",
    "CachedFunction",
    "Checkpoint",
    "CheckpointError",
    "CircuitBreaker",
    "CircuitOpen",
    "CommitOutcomeUnknown",
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
    "Limiter",
    "LoopWatch",
    "LoopWatchStatistics",
    "Monitor",
    "Outcome",
    "Pipeline",
    "PipelineError",
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
    "RegistryClosed",
    "RemoteError",
    "Results",
    "Retry",
    "RetryBudget",
    "RunReport",
    "RunState",
    "RunStatus",
    "Skip",
    "SlipstreamError",
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
    "monitor",
    "nonblocking",
    "offload",
    "prefetch",
    "query_source",
    "raise_failures",
    "retry",
    "retry_after_s",
    "run_long_statement",
    "scan",
    "sqlalchemy_flush",
    "sqlite_flush",
    "stream",
]
