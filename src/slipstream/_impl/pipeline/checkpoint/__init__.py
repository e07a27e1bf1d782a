"""``ss.Checkpoint``: what each item of a pipeline run became, durably.

A checkpoint is a table of ``(run_id, key) -> status`` where status is ``done`` (the sink
committed the item's result), ``failed`` (with the stage, the error and the raw detail) or
``skipped`` (with the reason). The pipeline writes ``done`` only after the sink's transaction
committed, so a crash at any moment leaves at worst items that are committed but not yet
marked; a resumed run processes them again and the sink's upsert by item key keeps one row
each.

The modules: ``records`` (``RunState``, ``RunStatus``, ``FailedItem`` and the one text format
of a failure), ``states`` (who runs a run: owner, heartbeat, and the judgement that reads a
``running`` run whose process is gone as ``interrupted``), ``store`` (the ``CheckpointStore``
protocol), ``sql`` (the statements and methods both SQL stores share), ``sqlite`` and
``postgres`` (one store each), and ``facade`` (``Checkpoint``, in front of exactly one store).

Stores: a SQLite file (default; WAL, one connection on one worker thread, so the loop never
waits on a file lock) or a PostgreSQL table (``postgresql://`` URL, asyncpg). A file that is
not a checkpoint, or is damaged, is refused with ``CheckpointError``; it is never reset. A file
of the previous format (1) is migrated in place, in one transaction (columns added, nothing
rewritten); a file of a format this version does not know is refused.

Who runs a run: ``start_run`` records the host, the pid (with the process's start time, so a
reused pid is not mistaken for the run) and a heartbeat, renewed every ``heartbeat_s`` by a
thread while the run lasts. ``status`` reports a run recorded as ``running`` as
``interrupted`` when its process is gone (same machine: the pid is checked) or, from another
machine, when its heartbeat is older than ``4 * heartbeat_s``.

Failures are stored as ``describe_error`` writes them: the exception's type and message, its
notes (``exc.__notes__``: why a retry gave up, a timeout) and its chain of causes, so the
checkpoint, ``RunReport.failures`` and ``slipstream status`` show the same reason.
"""

from __future__ import annotations

from .facade import Checkpoint as Checkpoint
from .records import FailedItem as FailedItem
from .records import RunState as RunState
from .records import RunStatus as RunStatus
from .records import describe_error as describe_error
from .records import error_detail as error_detail
from .records import format_failure as format_failure
from .states import judge_state as judge_state
from .store import CheckpointStore as CheckpointStore

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "FailedItem",
    "RunState",
    "RunStatus",
    "describe_error",
    "error_detail",
    "format_failure",
    "judge_state",
]
