"""Ready-made flush functions for ``BatchWriter``: asyncpg and SQLAlchemy, insert or upsert.

Each call writes its rows in one transaction, **exactly once**, also when the connection dies
around the COMMIT (``pg_terminate_backend``, a failover, a network cut):

- the transaction inserts the batch's id, before its rows, into a small marker table
  (``slipstream_batches(batch_id text PRIMARY KEY, committed_at timestamptz)``, created if
  missing): the marker commits with the rows or not at all;
- ``flush(rows, batch_id=...)``: ``BatchWriter`` passes a stable id per batch, the same on every
  retry. A retry whose marker is already there wrote nothing and returns: the batch committed
  before (``INSERT ... ON CONFLICT DO NOTHING`` also waits for an earlier attempt still in
  progress, so the two cannot both commit);
- an error after the COMMIT was sent (its reply lost) is settled at once on a fresh connection:
  committed means success, not committed means the error is raised and a retry is safe; if even
  the check fails, ``CommitOutcomeUnknown`` (a ``ConnectionError``) is raised, and a retry with
  the same ``batch_id`` settles it;
- an error after the COMMIT returned (releasing the connection to the pool, resetting it) is
  logged, never raised: the rows are in.

Markers stay bounded: once their COMMIT was acknowledged, markers are deleted by a later
transaction of the same flush function, 16 at a time (so at most 16 acknowledged ones are left
per flush function), and markers older than ``marker_retention_s`` (7 days: batches a writer
gave up on, flush functions that stopped) are deleted when a flush function first writes.
``BatchWriter`` and ``Pipeline`` pass the writer's batch ids. Called without ``batch_id`` (a
direct call), a flush makes its own id per call: exactly once unless even the post-COMMIT check
fails. A batch id names one batch: a batch whose
id is already in the marker table is not written. Pass ``marker_table=None`` for no markers
(at-least-once: retried batches are written again unless ``conflict=`` makes them upserts).

``sqlite_flush`` needs no marker: a local SQLite COMMIT either returns or rolls back.

Each flush has a lifecycle (``lifecycle``): ``setup()`` once before its first write (make the
pool from a factory, run the caller's ``setup=``, e.g. the DDL, create the marker table) and
``aclose()`` at the end (close the pool it made); a pipeline and the batch writers run both.

One module per backend (``asyncpg_sink``, ``sqlalchemy_sink``, ``sqlite_sink``); what they share
is written once: identifiers, records and the ``INSERT`` text (``sql``), the markers' SQL and
the exactly-once protocol (``markers``), and the sync/async steps that let one body serve a
sync and an async twin (``steps``).
"""

from __future__ import annotations

from .asyncpg_sink import asyncpg_flush as asyncpg_flush
from .lifecycle import ManagedFlush as ManagedFlush
from .lifecycle import SyncManagedFlush as SyncManagedFlush
from .lifecycle import call_hook as call_hook
from .lifecycle import lifecycle_of as lifecycle_of
from .sql import BatchFlush as BatchFlush
from .sql import new_batch_id as new_batch_id
from .sqlalchemy_sink import sqlalchemy_flush as sqlalchemy_flush
from .sqlite_sink import sqlite_flush as sqlite_flush

__all__ = [
    "BatchFlush",
    "ManagedFlush",
    "SyncManagedFlush",
    "asyncpg_flush",
    "call_hook",
    "lifecycle_of",
    "new_batch_id",
    "sqlalchemy_flush",
    "sqlite_flush",
]
