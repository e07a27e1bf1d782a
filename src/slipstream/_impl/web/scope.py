"""A per-request scope for ``DataLoader``s: ``ss.RequestScope``, ``ss.request_loader``.

A ``DataLoader`` caches what it loaded for its lifetime, so one shared by the whole app serves
one user's rows to another and never forgets; one made per call batches nothing. The right
lifetime is the request: every lookup one request makes joins one batch, and the next request
starts empty. ``request_loader(batch_fn)`` declares a loader once, at import time; each request
gets its own ``DataLoader`` from it:

- as a FastAPI dependency, ``Depends(roles)`` (FastAPI calls it once per request and shares
  the result between the request's dependencies);
- anywhere below the endpoint, ``roles.get()``, inside the scope that the ``RequestScope``
  middleware opens per request (or ``with ss.request_scope():`` in a job or a test). With the
  middleware installed, the dependency hands out that same loader.

The scope lives in a context variable: each request runs in its own task with its own context,
so two requests in flight at once never see each other's loaders. When the request ends, its
loaders' caches are cleared and ``get()`` from a task that outlived it raises.

Example::

    async def roles_by_user(ids: list[int]) -> dict[int, str]:
        rows = await pool.fetch("SELECT user_id, role FROM roles WHERE user_id = ANY($1)", ids)
        return {r["user_id"]: r["role"] for r in rows}

    roles = ss.request_loader(roles_by_user)
    app.add_middleware(ss.RequestScope)

    @app.get("/members")
    async def members(loader: ss.DataLoader[int, str] = Depends(roles)): ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterator
from contextvars import ContextVar
from typing import Any, Generic, Literal, TypeVar, final

from ..db.loader import BatchFn, DataLoader
from ..observe.asgi import ASGIApp, Receive, Scope, Send

__all__ = ["RequestLoader", "RequestScope", "request_loader", "request_scope"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Box:
    """One request's loaders, by the ``RequestLoader`` that declared them."""

    __slots__ = ("closed", "loaders")

    def __init__(self) -> None:
        self.loaders: dict[RequestLoader[Any, Any], DataLoader[Any, Any]] = {}
        self.closed = False

    def close(self) -> None:
        self.closed = True
        for loader in self.loaders.values():
            loader.clear()  # nothing this request loaded outlives it
        self.loaders.clear()


_current: ContextVar[_Box | None] = ContextVar("slipstream_request_scope", default=None)


@contextlib.contextmanager
def request_scope() -> Iterator[None]:
    """Open a request scope by hand (a job, a websocket message, a test): inside the block each
    ``RequestLoader.get()`` gives one loader, made on first use; leaving clears them.

    Example::

        with ss.request_scope():
            await handle(job)        # roles.get() inside shares one loader
    """
    box = _Box()
    token = _current.set(box)
    try:
        yield
    finally:
        _current.reset(token)
        box.close()


@final
class RequestScope:
    """ASGI middleware: open a request scope around every HTTP request and websocket.

    Plain ASGI, so it fits FastAPI (``app.add_middleware(ss.RequestScope)``), Starlette
    (``Middleware(ss.RequestScope)``) or any ASGI app (``app = ss.RequestScope(app)``). The
    scope covers the whole response, streamed bodies included.
    """

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        with request_scope():
            await self.app(scope, receive, send)


@final
class RequestLoader(Generic[K, V]):
    """A ``DataLoader`` declared once and made anew for each request (see ``request_loader``)."""

    __slots__ = ("_options", "batch_fn", "name")

    def __init__(
        self,
        batch_fn: BatchFn[K, V],
        *,
        batch_size: int = 1000,
        max_wait_s: float = 0.0,
        cache: bool = True,
        missing: Literal["none", "raise"] = "none",
        name: str | None = None,
    ) -> None:
        self.batch_fn = batch_fn
        self.name = name or getattr(batch_fn, "__qualname__", "loader")
        self._options: dict[str, Any] = {
            "batch_size": batch_size,
            "max_wait_s": max_wait_s,
            "cache": cache,
            "missing": missing,
            "name": self.name,
        }
        self._make()  # wrong options fail here, at import time, not in the first request

    def _make(self) -> DataLoader[K, V]:
        return DataLoader(self.batch_fn, **self._options)

    def get(self) -> DataLoader[K, V]:
        """This request's loader (made on first use in the scope).

        Raises:
            RuntimeError: no request scope is open (no ``RequestScope`` middleware, or a task
                that outlived its request).
        """
        box = _current.get()
        if box is None or box.closed:
            why = "the request scope has ended" if box is not None else "no request scope is open"
            raise RuntimeError(
                f"request loader {self.name!r}: {why}; a loader is made per request and lives "
                "as long as its request\nHINT: add the middleware (app.add_middleware("
                "ss.RequestScope)), or open a scope of its own: `with ss.request_scope(): ...`"
            )
        loader = box.loaders.get(self)
        if loader is None:
            loader = box.loaders[self] = self._make()
        return loader

    async def __call__(self) -> DataLoader[K, V]:
        """The FastAPI dependency: the scope's loader when ``RequestScope`` is installed, else a
        new one (FastAPI calls a dependency once per request and shares its value)."""
        box = _current.get()
        if box is None or box.closed:
            return self._make()
        return self.get()

    def __repr__(self) -> str:
        return f"<RequestLoader {self.name!r}>"


def request_loader(
    batch_fn: BatchFn[K, V],
    *,
    batch_size: int = 1000,
    max_wait_s: float = 0.0,
    cache: bool = True,
    missing: Literal["none", "raise"] = "none",
    name: str | None = None,
) -> RequestLoader[K, V]:
    """Declare a per-request ``DataLoader`` over ``batch_fn``: ``Depends(it)`` in FastAPI, or
    ``it.get()`` inside a request scope. The options are ``DataLoader``'s.

    Raises:
        TypeError, ValueError: an option ``DataLoader`` would refuse, named.
    """
    return RequestLoader(
        batch_fn,
        batch_size=batch_size,
        max_wait_s=max_wait_s,
        cache=cache,
        missing=missing,
        name=name,
    )
