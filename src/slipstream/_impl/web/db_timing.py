"""``ss.QueryTiming``: each request's database statements, in a ``Server-Timing`` header and,
when they repeat, in one warning per N+1 on the ``slipstream.detect`` logger.

Each HTTP request runs inside its own ``ss.watch()`` scope, so it counts what the connections
and engines hooked with ``ss.instrument(...)`` send for it, and nothing from another request
(the scope lives in a context variable; tasks the endpoint starts count toward it). When the
response starts, the scope's running totals go out as ``Server-Timing: db;dur=<ms>;desc="<N>
queries"``, which the browser's network panel shows beside the request; a ``Server-Timing``
the app set itself keeps its metrics, ours follows after ``", "``. When the request ends, each
finding (an SLP201 query in a loop, an SLP202 write in a loop, an SLP203 commit in a loop) is
logged once as a WARNING with its call site and fix, and counted as ``db.n_plus_one`` in the
monitor. Plain ASGI: it needs no framework.

The duration is the time the drivers report: sqlite3 gives none, so a sqlite3 app's ``dur`` is
0 and its count is what matters. Instrumented httpx clients count too (they record into the
same scope).

Example::

    ss.instrument(engine)
    app.add_middleware(ss.QueryTiming, min_repeats=5)
"""

from __future__ import annotations

import inspect
import logging
import math
from types import CodeType
from typing import final

from ..core.checks import check_int, check_seconds
from ..core.frames import is_user_code
from ..detect.scope import Watch
from ..observe.asgi import ASGIApp, Message, Receive, Scope, Send
from ..observe.monitor import Monitor
from ..observe.monitor import monitor as _default_monitor

__all__ = ["QueryTiming", "server_timing"]

_LOGGER = logging.getLogger("slipstream.detect")
COUNTER = "db.n_plus_one"


_UNROUTED = ("<request>", 0, "<unknown>")


def endpoint_site(scope: Scope) -> tuple[str, int, str] | None:
    """Where the endpoint the router chose for this request is defined (Starlette and FastAPI
    put it in ``scope["endpoint"]``), when it is the user's code."""
    endpoint = scope.get("endpoint")
    if endpoint is None:
        return None
    fn = inspect.unwrap(endpoint) if callable(endpoint) else endpoint
    code = getattr(fn, "__code__", None)
    if code is None:  # a class endpoint (an ASGI app object): its __call__
        code = getattr(type(fn).__call__, "__code__", None)
    if not isinstance(code, CodeType) or not is_user_code(code.co_filename):
        return None
    return code.co_filename, code.co_firstlineno, code.co_qualname


def server_timing(queries: int, db_s: float) -> bytes:
    """The ``Server-Timing`` metric for ``queries`` statements taking ``db_s`` seconds."""
    noun = "query" if queries == 1 else "queries"
    return f'db;dur={db_s * 1000:.3f};desc="{queries} {noun}"'.encode()


def _with_metric(headers: list[tuple[bytes, bytes]], metric: bytes) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``metric`` appended to the last ``Server-Timing``, or as a new one."""
    out = list(headers)
    for i in range(len(out) - 1, -1, -1):
        name, value = out[i]
        if name.lower() == b"server-timing":
            out[i] = (name, value + b", " + metric if value.strip() else metric)
            return out
    out.append((b"server-timing", metric))
    return out


@final
class QueryTiming:
    """ASGI middleware: watch each HTTP request's statements; time them in ``Server-Timing``
    and log each N+1 it finds.

    Args:
        app: the ASGI app.
        min_repeats: repeats of one statement from one call site that make a finding (>= 2).
        min_total_s: seconds those repeats must take in total, when the driver times them.
        monitor: where ``db.n_plus_one`` is counted (default the process-wide ``ss.monitor``).
        logger: where the findings go (default the ``slipstream.detect`` logger).

    Raises:
        TypeError, ValueError: a gate out of range, a monitor or logger of the wrong type.
    """

    __slots__ = ("app", "logger", "min_repeats", "min_total_s", "monitor")

    def __init__(
        self,
        app: ASGIApp,
        *,
        min_repeats: int = 5,
        min_total_s: float = 0.05,
        monitor: Monitor | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.app = app
        self.min_repeats = check_int("min_repeats", min_repeats, minimum=2)
        self.min_total_s = check_seconds("min_total_s", min_total_s, allow_zero=True)
        if monitor is not None and not isinstance(monitor, Monitor):
            raise TypeError(f"'monitor' must be a Monitor or None, got {type(monitor).__name__}")
        if logger is not None and not isinstance(logger, logging.Logger):
            raise TypeError(
                f"'logger' must be a logging.Logger or None, got {type(logger).__name__}"
            )
        self.monitor = _default_monitor if monitor is None else monitor
        self.logger = _LOGGER if logger is None else logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watch = Watch(
            min_repeats=self.min_repeats,
            min_total_s=self.min_total_s,
            slow_s=math.inf,
            record_to=None,
            site=_UNROUTED,  # not this middleware's caller: the server's loop
        )

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start":
                metric = server_timing(*watch.totals())
                message["headers"] = _with_metric(message.get("headers", []), metric)
            await send(message)

        try:
            async with watch:
                try:
                    await self.app(scope, receive, send_with_timing)
                finally:
                    # statements with no call site of their own (asyncpg's) belong to the
                    # endpoint the router chose, known now
                    site = endpoint_site(scope)
                    if site is not None:
                        watch.rebase(site)
        finally:
            self._report(scope, watch)

    def _report(self, scope: Scope, watch: Watch) -> None:
        report = watch.report
        if report is None:
            return
        request = f"{scope.get('method', 'GET')} {scope.get('path', '')}"
        for finding in report.findings:
            self.monitor.count(COUNTER)
            self.logger.warning(
                "%s %s at %s:%d in %s: %d x %r (%.1f ms) during %s. Fix: %s",
                finding.code,
                finding.name,
                finding.path,
                finding.line,
                finding.function,
                finding.count,
                finding.fingerprint,
                finding.total_s * 1000,
                request,
                finding.fix,
            )
