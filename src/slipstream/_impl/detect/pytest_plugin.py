"""The pytest plugin's logic (the hooks are in ``slipstream_pytest``).

- ``--slipstream-detect``: each test's *call* phase runs in an ``ss.watch()`` scope with test
  gates (``min_repeats`` 2, ``min_total_s`` 0); an SLP201/SLP202/SLP203 finding fails the test.
- ``@pytest.mark.max_queries(n)``: the call phase may send at most ``n`` statements.
- ``query_budget(n)``: the same for one ``with`` block.

Setup and teardown are not watched: fixtures that create the data would otherwise count as the
test's per-item writes. An ``async def`` test gets its scope entered *inside* the coroutine,
so a runner created before the test (anyio's runner task, a session-scoped loop) still sees it.

SQLAlchemy is hooked for every engine through class-level listeners on ``Engine`` (the
watchers' own functions: an engine also hooked with ``ss.instrument`` is not counted twice,
the first listener runs the statement and stops the dispatch) and a ``Session`` listener that
counts the commits sawatch's own listener does not. Removed at the end of the run.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import sys
from collections.abc import Callable, Coroutine, Generator
from importlib.util import find_spec
from types import TracebackType
from typing import Any, final

import pytest

from ..core.checks import check_int
from . import sawatch
from .detectors import QueryFinding, WatchReport
from .scope import CURRENT, Watch, call_site, mark_instrumented, record

__all__ = ["QueryBudget", "install_sqlalchemy", "uninstall_sqlalchemy", "watch_call"]

_INF = float("inf")
_LISTENERS: list[tuple[str, Any]] = [
    ("do_execute", sawatch._do_execute),
    ("do_executemany", sawatch._do_executemany),
    ("do_execute_no_params", sawatch._do_execute_no_params),
]
_users = 0  # configs (pytester runs nest) that asked for the class-level hooks
_had_events = False


def _global_session_commit(session: Any) -> None:
    """Count a ``Session`` commit that sawatch's own listener leaves out (an engine nobody
    hooked with ``ss.instrument``), so every ORM commit counts exactly once."""
    scope = CURRENT.get()
    if scope is None:
        return
    bind = session.bind
    if bind is None:
        if sawatch._SESSION_HOOKED:
            return  # counted there
    else:
        engine = getattr(bind, "engine", bind)
        if engine in sawatch._CORE_COMMITS or engine in sawatch._ENGINES:
            return  # counted by the connection's commit event, or by sawatch's listener
    record(scope, "COMMIT", None, call_site(2))


def install_sqlalchemy() -> bool:
    """Hook every SQLAlchemy engine (class-level listeners); False when SQLAlchemy is absent."""
    global _users, _had_events
    if "sqlalchemy" not in sys.modules and find_spec("sqlalchemy") is None:
        return False
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.engine.interfaces import Dialect
    from sqlalchemy.orm import Session

    if _users == 0:
        _had_events = bool(Dialect.__dict__.get("_has_events", False))
        for name, fn in _LISTENERS:
            event.listen(Engine, name, fn)
        event.listen(Session, "after_commit", _global_session_commit)
        mark_instrumented()
    _users += 1
    return True


def uninstall_sqlalchemy() -> None:
    """Undo :func:`install_sqlalchemy` (once its last user is done)."""
    global _users
    _users -= 1
    if _users > 0:
        return
    _users = 0
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.engine.interfaces import Dialect
    from sqlalchemy.orm import Session

    for name, fn in _LISTENERS:
        if event.contains(Engine, name, fn):
            event.remove(Engine, name, fn)
    if event.contains(Session, "after_commit", _global_session_commit):
        event.remove(Session, "after_commit", _global_session_commit)
    Dialect._has_events = _had_events  # the class-level listen set it True


def _test_scope(min_repeats: int, site: tuple[str, int, str] | None = None) -> Watch:
    return Watch(min_repeats=min_repeats, min_total_s=0.0, slow_s=_INF, record_to=None, site=site)


async def _drain() -> None:
    """One loop turn under asyncio, so asyncpg's query log records (``call_soon``) arrive."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # another backend (trio)
        return
    await asyncio.sleep(0)


def _in_scope(
    fn: Callable[..., Coroutine[Any, Any, Any]], scope: Watch
) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> Any:
        with scope:
            try:
                return await fn(*args, **kwargs)
            finally:
                await _drain()

    return run


def _where(path: str, rootdir: str) -> str:
    try:
        rel = os.path.relpath(path, rootdir)
    except ValueError:  # another drive
        return path
    return path if rel.startswith("..") else rel


def format_findings(findings: tuple[QueryFinding, ...] | list[QueryFinding], rootdir: str) -> str:
    """One line per finding (call site, code, count, fingerprint, time) and its fix."""
    lines = []
    for f in findings:
        lines.append(
            f"  {_where(f.path, rootdir)}:{f.line} in {f.function}: {f.code} {f.name}: "
            f"{f.count} x {f.fingerprint!r} ({f.total_s * 1000:.1f} ms)"
        )
        lines.append(f"      fix: {f.fix}")
    return "\n".join(lines)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _top(report: WatchReport, n: int = 5) -> str:
    ranked = sorted(report.by_fingerprint.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return "\n".join(f"  {count:>5} x {fp!r}" for fp, count in ranked)


def budget_message(report: WatchReport, limit: int, what: str, rootdir: str) -> str:
    """The failure text of a statement budget: the count, the budget, the top fingerprints."""
    text = (
        f"slipstream: {_n(report.queries, 'statement')} sent, over the budget of {limit} "
        f"({what}). "
        f"Most sent:\n{_top(report)}"
    )
    if report.findings:
        text += "\nrepeated from one call site:\n" + format_findings(report.findings, rootdir)
    return text


def _max_queries(marker: pytest.Mark | None) -> int | None:
    if marker is None:
        return None
    if marker.kwargs or len(marker.args) != 1:
        raise TypeError("max_queries takes one argument, the budget: @pytest.mark.max_queries(3)")
    return check_int("max_queries", marker.args[0], minimum=0)


def _allowed(item: pytest.Item) -> set[str] | None:
    """Codes ``@pytest.mark.slipstream_allow(...)`` lets through; None when not marked; an
    empty set (the marker with no codes) allows every finding."""
    marks = list(item.iter_markers("slipstream_allow"))
    if not marks:
        return None
    codes: set[str] = set()
    for mark in marks:
        if not mark.args:
            return set()
        codes.update(str(a).upper() for a in mark.args)
    return codes


def watch_call(
    item: pytest.Item, *, detect: bool, min_repeats: int, record_to: str | None
) -> Generator[None, Any, Any]:
    """The body of the plugin's ``pytest_runtest_call`` wrapper (``yield from`` it)."""
    limit = _max_queries(item.get_closest_marker("max_queries"))
    allowed = _allowed(item) if detect else None
    _, line, _ = item.reportinfo()
    scope = _test_scope(min_repeats, (str(item.path), (line or 0) + 1, item.name))
    fn = getattr(item, "obj", None)
    wrap = isinstance(item, pytest.Function) and inspect.iscoroutinefunction(fn)
    try:
        if wrap:
            item.obj = _in_scope(fn, scope)  # type: ignore[attr-defined,arg-type]
            try:
                result = yield
            finally:
                item.obj = fn  # type: ignore[attr-defined]
        else:
            with scope:
                result = yield
    except BaseException:
        if scope.report is not None and scope.report.findings:
            text = format_findings(scope.report.findings, str(item.config.rootpath))
            item.add_report_section("call", "slipstream findings", text)
        raise
    report = scope.report
    if report is None:  # the wrapped coroutine never ran
        return result
    if record_to is not None and report.findings:
        report.write(record_to)
    rootdir = str(item.config.rootpath)
    failures = []
    if detect:
        findings = [
            f for f in report.findings if allowed is None or (allowed and f.code not in allowed)
        ]
        if findings:
            failures.append(
                f"slipstream: {_n(len(findings), 'finding')} in the test's call phase "
                f"(min_repeats={min_repeats}; {_n(report.queries, 'statement')} in all):\n"
                + format_findings(findings, rootdir)
                + "\nFix the code, or mark the test @pytest.mark.slipstream_allow("
                + ", ".join(repr(c) for c in sorted({f.code for f in findings}))
                + ")."
            )
    if limit is not None and report.queries > limit:
        failures.append(
            budget_message(report, limit, f"@pytest.mark.max_queries({limit})", rootdir)
        )
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)
    return result


@final
class QueryBudget:
    """``with query_budget(3):`` (or ``async with``): fails the test when the block sends more
    than ``limit`` statements (commits and HTTP calls included) through hooked drivers.

    Attributes:
        limit: the budget.
        report: the block's ``WatchReport``, set when it exits (None before).
    """

    __slots__ = ("_rootdir", "_scope", "info", "limit", "report")

    def __init__(self, limit: int, *, info: str | None = None, rootdir: str = ".") -> None:
        self.limit = check_int("limit", limit, minimum=0)
        if info is not None and not isinstance(info, str):
            raise TypeError(f"'info' must be a str or None, got {type(info).__name__}")
        self.info = info
        self.report: WatchReport | None = None
        self._rootdir = rootdir
        self._scope = _test_scope(2)

    @property
    def queries(self) -> int:
        """Statements counted so far (while the block runs) or in all (after it)."""
        if self.report is not None:
            return self.report.queries
        return self._scope.totals()[0]

    def __enter__(self) -> QueryBudget:
        self._scope.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._scope.__exit__(exc_type, exc, tb)
        self._check(exc_type)

    async def __aenter__(self) -> QueryBudget:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._scope.__aexit__(exc_type, exc, tb)
        self._check(exc_type)

    def _check(self, exc_type: type[BaseException] | None) -> None:
        report = self.report = self._scope.report
        if exc_type is not None or report is None or report.queries <= self.limit:
            return
        what = f"query_budget({self.limit})"
        text = budget_message(report, self.limit, what, self._rootdir)
        if self.info:
            text = f"{self.info}\n{text}"
        pytest.fail(text, pytrace=False)
