"""ASGI middleware for Starlette / FastAPI: ``X-Process-Time``, per-route latency in the
monitor, and ``Cache-Control`` for static assets.

Clock: a request's time is the wall time it spends on the loop, mostly awaiting, so it is read
from the clock seam (``core.clock.clock``). In production that is ``time.monotonic``, so the
header is real wall time; under ``slipstream.testing.run(virtual_clock=True)`` it is the virtual
time the request took, the same figure the monitor records for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, final

from ..core import clock as _clock
from .monitor import Monitor
from .monitor import monitor as default_monitor

__all__ = ["TimingMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@final
class TimingMiddleware:
    """Time every HTTP request.

    Adds ``X-Process-Time`` (seconds until the response started) to every response, records
    ``"<METHOD> <route path>"`` in the monitor (the route's template, e.g. ``/items/{id}``,
    so ids do not become names; the raw path when no route matched), and adds
    ``Cache-Control`` to responses under ``static_prefixes`` that do not set one.

    Example::

        app = Starlette(routes=..., middleware=[Middleware(ss.TimingMiddleware)])
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        monitor: Monitor | None = None,
        static_prefixes: tuple[str, ...] = ("/static/",),
        cache_control: str = "public, max-age=86400",
    ) -> None:
        self.app = app
        self.monitor = monitor if monitor is not None else default_monitor
        self.static_prefixes = static_prefixes
        self.cache_control = cache_control.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = _clock.clock()
        path: str = scope.get("path", "")
        static = path.startswith(self.static_prefixes)

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-process-time", f"{_clock.clock() - start:.6f}".encode()))
                if static and not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", self.cache_control))
                message["headers"] = headers
            await send(message)

        failed = True
        try:
            await self.app(scope, receive, timed_send)
            failed = False
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or path
            name = f"{scope.get('method', 'GET')} {template}"
            self.monitor.record(name, _clock.clock() - start, failed)
