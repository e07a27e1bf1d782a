"""One answer to "is this error worth a retry?", for the writer, ``Retry`` and everyone else.

Two questions, one classifier:

- ``is_connection_error(exc)``: the connection, or the outcome of a transaction, failed; the data
  is fine, so the same rows may be written again (the writer retries them instead of bisecting);
- ``is_transient(exc)``: a later attempt can plausibly succeed: the connection errors above, plus
  timeouts and HTTP 408, 425, 429, 500, 502, 503, 504 (``Retry``'s default ``on=``).

Decided by exception *types* and SQLSTATE codes, never by words in a message:

- Python: ``OSError`` (``ConnectionError``, ``TimeoutError`` and ``asyncio.TimeoutError`` are
  among its subclasses), except the ones about a local path (``FileNotFoundError``,
  ``FileExistsError``, ``IsADirectoryError``, ``NotADirectoryError``, ``PermissionError``): a
  later attempt finds the same file missing;
- SQLSTATE (asyncpg's ``exc.sqlstate``, psycopg's ``exc.sqlstate``, psycopg2's ``exc.pgcode``):
  class ``08`` (connection exception), ``57P01`` / ``57P02`` / ``57P03`` (admin shutdown, crash
  shutdown, cannot connect now), ``53300`` (too many connections), ``40001`` / ``40P01``
  (serialization failure, deadlock: the transaction was rolled back, the data is fine), and
  ``57014`` / ``55P03`` (statement or lock timeout);
- asyncpg without a SQLSTATE: ``InternalClientError`` (its protocol state machine, e.g. "cannot
  switch to state ...; another operation is in progress" after a killed backend) and a plain
  ``InterfaceError`` (the connection is closed or busy); its ``DataError`` and
  ``ClientConfigurationError`` (bad arguments) are not;
- DB-API drivers without a SQLSTATE (psycopg2 "server closed the connection unexpectedly"):
  ``OperationalError`` and ``InterfaceError``;
- sqlite3: ``sqlite_errorcode`` (Python 3.11) ``SQLITE_BUSY`` or ``SQLITE_LOCKED`` ("database is
  locked"), extended codes included; any other sqlite3 error is not;
- SQLAlchemy: ``connection_invalidated``, its ``DisconnectionError`` and pool ``TimeoutError``,
  and whatever the wrapped driver error (``exc.orig``, and the driver error SQLAlchemy's asyncpg
  adapter raised it from) says;
- ``CommitOutcomeUnknown``: raised by the built-in flushes when a COMMIT was sent and its outcome
  could not be checked.

Bad data is never a connection error: integrity violations (class 23), data exceptions (22),
syntax and undefined objects (42), ``ValueError``, ``TypeError``, ``KeyError``.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator

from .errors import PollTimeout, SlipstreamError

__all__ = ["CommitOutcomeUnknown", "is_connection_error", "is_transient"]

_CONNECTION_SQLSTATES = frozenset(
    {
        "57P01",  # admin_shutdown (pg_terminate_backend)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up, shutting down, recovering)
        "53300",  # too_many_connections
        "40001",  # serialization_failure: rolled back, retry the transaction
        "40P01",  # deadlock_detected: rolled back, retry the transaction
        "57014",  # query_canceled (statement_timeout, pg_cancel_backend)
        "55P03",  # lock_not_available (lock_timeout, NOWAIT)
    }
)
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_TRANSIENT_NAMES = frozenset({"TransportError", "TimeoutException", "NetworkError"})  # httpx
_SQLALCHEMY_CONNECTION_NAMES = frozenset({"DisconnectionError", "TimeoutError"})


class CommitOutcomeUnknown(SlipstreamError, ConnectionError):
    """A COMMIT was sent and neither its reply nor a check on a fresh connection told whether
    it took effect. Writing the batch again *with the same* ``batch_id`` is safe: the built-in
    flushes find its marker if it committed. The driver's error is ``__cause__``.

    A ``ConnectionError``, so ``is_connection_error`` and ``is_transient`` are true for it.
    """

    def __init__(self, batch_id: str, detail: str) -> None:
        super().__init__(f"the outcome of the COMMIT of batch {batch_id!r} is unknown: {detail}")
        self.batch_id = batch_id
        self.detail = detail

    def __reduce__(self) -> tuple[type[CommitOutcomeUnknown], tuple[str, str]]:
        return type(self), (self.batch_id, self.detail)


def _sqlstate(exc: BaseException) -> str | None:
    for attribute in ("sqlstate", "pgcode"):
        code = getattr(exc, attribute, None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def _related(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then the driver errors SQLAlchemy wrapped in it (``orig``, and for its adapted
    drivers the original exception the adapter raised ``orig`` from)."""
    yield exc
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException) and orig is not exc:
        yield orig
        cause = orig.__cause__
        if cause is not None and type(orig).__module__.startswith("sqlalchemy"):
            yield cause


def _asyncpg_verdict(exc: BaseException) -> bool | None:
    """True / False for asyncpg's client-side errors, None when asyncpg has no say."""
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is None:  # no asyncpg error can exist before asyncpg is imported
        return None
    if isinstance(exc, asyncpg.InternalClientError):
        return True
    if isinstance(exc, asyncpg.InterfaceError):
        # DataError, ClientConfigurationError (ValueErrors: bad arguments) and the
        # Unsupported*FeatureErrors are about the call; the others about the connection.
        return not isinstance(
            exc,
            ValueError
            | asyncpg.exceptions.UnsupportedClientFeatureError
            | asyncpg.exceptions.UnsupportedServerFeatureError,
        )
    return None


# OSErrors about a path, not a peer: another attempt finds the same file missing.
_LOCAL_OS_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def _one(exc: BaseException) -> bool | None:
    """The verdict of one exception: True (connection), False (not), None (no opinion)."""
    if isinstance(exc, _LOCAL_OS_ERRORS):
        return False
    if isinstance(exc, CommitOutcomeUnknown | OSError):
        return True
    code = _sqlstate(exc)
    if code is not None:
        return code.startswith("08") or code in _CONNECTION_SQLSTATES
    if isinstance(exc, sqlite3.Error):
        errorcode = getattr(exc, "sqlite_errorcode", None)
        return isinstance(errorcode, int) and errorcode & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    if getattr(exc, "connection_invalidated", False) is True:  # SQLAlchemy DBAPIError
        return True
    verdict = _asyncpg_verdict(exc)
    if verdict is not None:
        return verdict
    module = type(exc).__module__
    if module.startswith("sqlalchemy"):
        names = {cls.__name__ for cls in type(exc).__mro__}
        if names & _SQLALCHEMY_CONNECTION_NAMES:
            return True
        return None  # a DBAPIError: its driver error (orig) decides
    # A DB-API driver's error without a SQLSTATE (psycopg2's "server closed the connection
    # unexpectedly", "connection already closed"): the operation, not the data, failed.
    if type(exc).__name__ in ("OperationalError", "InterfaceError"):
        return True
    return None


def is_connection_error(exc: BaseException) -> bool:
    """True when the connection or the outcome of a transaction failed, not the data: the
    same rows may be written again. See the module doc for the exact rules."""
    for candidate in _related(exc):
        verdict = _one(candidate)
        if verdict is not None:
            return verdict
    return False


def _status_of(exc: BaseException) -> int | None:
    """HTTP status carried by an exception (httpx/requests ``.response.status_code``, aiohttp
    ``.status``), or None."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is None:
        status = getattr(exc, "status", None)
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def is_transient(exc: BaseException) -> bool:
    """The default retry predicate: errors that a later attempt can plausibly cure (connection
    errors as ``is_connection_error``, timeouts, HTTP 408/425/429/500/502/503/504, httpx's
    transport errors). A ``PollTimeout`` is not one: its poll already waited its whole deadline,
    and a retry would start that wait again."""
    if isinstance(exc, PollTimeout):
        return False
    if is_connection_error(exc):
        return True
    status = _status_of(exc)
    if status is not None:
        return status in _TRANSIENT_STATUS
    # httpx's transport errors, recognised without importing httpx.
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__)
