"""Scopes: ``with ss.watch():`` / ``async with ss.watch():`` collects the statements the
block sends, and reports what the detectors find in them when it exits.

The current scope lives in a context variable, so two tasks (two requests) each inside their
own scope never see each other's statements, and a task started inside a scope (with
``asyncio.gather``, ``create_task``) counts toward it. Scopes nest: a statement counts in the
innermost scope and in every scope around it. A watcher hook with no scope active returns
after one context-variable read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from contextvars import ContextVar, Token
from types import CodeType, FrameType, TracebackType
from typing import final

from ..core.checks import check_int, check_seconds
from ..core.frames import is_user_frame
from .detectors import Entry, SlowQuery, Tally, WatchReport, detect
from .fingerprint import Kind, classify, fingerprint

__all__ = ["CURRENT", "Watch", "call_site", "mark_instrumented", "record", "record_as"]

CURRENT: ContextVar[Watch | None] = ContextVar("slipstream_watch", default=None)
# Set by ``instrument()`` (once anything was hooked, for good): while False no hook exists, so
# a caller that would open scopes around every call (a pipeline stage) can skip them.
INSTRUMENTED = False


def mark_instrumented() -> None:
    """Note that a driver was hooked (``instrument`` calls it): scopes can now see statements."""
    global INSTRUMENTED
    INSTRUMENTED = True


_UNKNOWN = ("<unknown>", 0, "<unknown>")


# Keyed by ``id(code)``, the code object kept in the value so its id is not reused: hashing a
# code object hashes its name, constants and names tuples anew (about 1,000 instructions, and
# the walk looks up two or three frames a statement).
_USER_CODE: dict[int, tuple[CodeType, bool]] = {}
# (id(code), instruction offset) -> the site: ``f_lineno`` scans the code's line table from its
# start on every read (about 4,800 instructions in a loop of a module's body, more than the
# rest of a statement's recording), and one call site is read again and again.
_SITES: dict[tuple[int, int], tuple[CodeType, tuple[str, int, str]]] = {}


def _user_frame(frame: FrameType | None) -> tuple[str, int, str] | None:
    known = _USER_CODE
    while frame is not None:
        code = frame.f_code
        found = known.get(id(code))
        if found is None:
            user = is_user_frame(frame)
            if len(known) < 50_000:  # bounded: a process may compile code forever
                known[id(code)] = (code, user)
        else:
            user = found[1]
        if user:
            key = (id(code), frame.f_lasti)
            cached = _SITES.get(key)
            if cached is None:
                site = (code.co_filename, frame.f_lineno or code.co_firstlineno, code.co_qualname)
                if len(_SITES) >= 50_000:
                    _SITES.clear()
                _SITES[key] = (code, site)
                return site
            return cached[1]
        frame = frame.f_back
    return None


def call_site(depth: int = 2) -> tuple[str, int, str] | None:
    """The innermost frame of the user's code calling into the driver: file, line, function.

    Under SQLAlchemy's asyncio engines the driver runs in a greenlet whose stack stops at
    SQLAlchemy; the walk then goes on in the parent greenlet, suspended in the user's ``await``.
    """
    found = _user_frame(sys._getframe(depth))
    if found is None:
        greenlet = sys.modules.get("greenlet")
        if greenlet is not None:
            parent = greenlet.getcurrent().parent
            while found is None and parent is not None:
                found = _user_frame(parent.gr_frame)
                parent = parent.parent
    return found


def record(
    scope: Watch, sql: str, duration_s: float | None, site: tuple[str, int, str] | None
) -> None:
    """Count one statement in ``scope`` and every scope around it."""
    # the text sent again (a parameterised statement, or a constant one: ``SELECT 1``, which
    # the fingerprint's shape cache would take a regex pass to find): one look-up
    known = _KNOWN.get(sql)
    if known is None:
        fp = fingerprint(sql)
        known = (fp, classify(fp))
        if len(_KNOWN) >= 4096:
            _KNOWN.clear()  # bounded: statements with values inlined are each new
        _KNOWN[sql] = known
    record_as(scope, known[0], known[1], duration_s, site)


_KNOWN: dict[str, tuple[str, Kind]] = {}


def record_as(
    scope: Watch,
    fp: str,
    kind: Kind,
    duration_s: float | None,
    site: tuple[str, int, str] | None,
) -> None:
    """Count one fingerprinted call (a statement, an HTTP request) in ``scope`` and its parents."""
    if site is None:
        site = scope._site
    key = (fp, *site)
    s: Watch | None = scope
    while s is not None:
        entry = s._tally.get(key)
        if entry is None:
            entry = s._tally[key] = Entry(kind)
        entry.count += 1
        if duration_s is not None:
            entry.total_s += duration_s
            entry.timed += 1
            if duration_s >= s.slow_s:
                s._slow.append(
                    SlowQuery(fingerprint=fp, duration_s=duration_s, path=site[0], line=site[1])
                )
        s = s._parent


@final
class Watch:
    """One scope of statements; made by :func:`watch`. Its :attr:`report` is set at exit."""

    __slots__ = (
        "_parent",
        "_site",
        "_slow",
        "_tally",
        "_token",
        "_walk",
        "min_repeats",
        "min_total_s",
        "record_to",
        "report",
        "slow_s",
    )

    def __init__(
        self,
        *,
        min_repeats: int,
        min_total_s: float,
        slow_s: float,
        record_to: str | None,
        site: tuple[str, int, str] | None = None,
    ) -> None:
        self.min_repeats = check_int("min_repeats", min_repeats, minimum=2)
        self.min_total_s = check_seconds("min_total_s", min_total_s, allow_zero=True)
        self.slow_s = check_seconds("slow_s", slow_s, allow_zero=True, allow_inf=True)
        if record_to is not None and not isinstance(record_to, str):
            raise TypeError(
                f"record_to must be a path (str) or None, got {type(record_to).__name__}"
            )
        self.record_to = record_to
        self.report: WatchReport | None = None
        self._tally: Tally = {}
        self._slow: list[SlowQuery] = []
        self._parent: Watch | None = None
        self._token: Token[Watch | None] | None = None
        # ``site``: the scope's own call site, given by library code that enters it (else the
        # line that enters it, found then)
        self._site = _UNKNOWN if site is None else site
        self._walk = site is None

    def totals(self) -> tuple[int, float]:
        """The totals so far, while the scope is open: statements (commits and HTTP calls
        included) and seconds in those the driver timed (the report's ``queries`` and
        ``db_s``). Summed from the tally when asked (once a request), so recording a statement
        pays nothing for it."""
        entries = self._tally.values()
        return sum(e.count for e in entries), sum(e.total_s for e in entries)

    def inner(self, site: tuple[str, int, str]) -> Watch:
        """A scope inside this one, with its gates, that is never entered: code that sets
        ``CURRENT`` to it around the calls it covers (a pipeline stage, per call) counts their
        statements in it and in this one. ``site`` stands for the call site of statements whose
        driver gives none (asyncpg)."""
        child = Watch(
            min_repeats=self.min_repeats,
            min_total_s=self.min_total_s,
            slow_s=self.slow_s,
            record_to=None,
        )
        child._parent = self
        child._site = site
        return child

    def snapshot(self) -> WatchReport:
        """What the detectors find in the statements so far; the scope stays open."""
        return detect(
            self._tally, self._slow, min_repeats=self.min_repeats, min_total_s=self.min_total_s
        )

    def rebase(self, site: tuple[str, int, str]) -> None:
        """Make ``site`` the scope's own call site (what statements whose driver gives none,
        asyncpg's, are attributed to), moving those already counted at the old one. For a scope
        entered by library code (``QueryTiming``), once it knows the user's code (the endpoint)."""
        old, self._site = self._site, site
        if old == site:
            return
        tally = self._tally
        for key in [k for k in tally if k[1:] == old]:
            entry = tally.pop(key)
            moved = (key[0], *site)
            into = tally.get(moved)
            if into is None:
                tally[moved] = entry
            else:
                into.count += entry.count
                into.total_s += entry.total_s
                into.timed += entry.timed
        self._slow = [
            dataclasses.replace(q, path=site[0], line=site[1]) if (q.path, q.line) == old[:2] else q
            for q in self._slow
        ]

    def __enter__(self) -> Watch:
        if self._token is not None:
            raise RuntimeError("this watch scope is already entered; call ss.watch() again")
        if self._walk:
            self._site = _user_frame(sys._getframe(1)) or _UNKNOWN
        self._parent = CURRENT.get()
        self._token = CURRENT.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        report = self._close()
        if self.record_to is not None:
            report.write(self.record_to)

    def _close(self) -> WatchReport:
        token, self._token = self._token, None
        if token is not None:
            CURRENT.reset(token)
        report = detect(
            self._tally, self._slow, min_repeats=self.min_repeats, min_total_s=self.min_total_s
        )
        self.report = report
        return report

    async def __aenter__(self) -> Watch:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # asyncpg hands its query log records to the loop (call_soon): one turn delivers them.
        # The scope closes even when that turn is cancelled.
        try:
            await asyncio.sleep(0)
        finally:
            report = self._close()
        if self.record_to is not None:  # a file lock and a write: off the loop
            await asyncio.to_thread(report.write, self.record_to)
