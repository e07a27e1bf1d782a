"""``ss.CacheControl``: ``Cache-Control`` per route, by path prefix or by a route decorator.

Every response the browser or a CDN may keep needs a ``Cache-Control`` header, and writing it
by hand in each endpoint is forgotten on the next one. ``CacheControl`` adds it from one table
(``{"/api/config": "public, max-age=60", "/static/": "public, max-age=86400"}``) or from
``@ss.cache_control("...")`` on the endpoint, and only where it is safe:

- never over a ``Cache-Control`` the app set itself (the endpoint knows better);
- only on ``GET`` and ``HEAD`` (other methods change state; their responses are not reused);
- only on statuses a cache may keep: 200, 203, 204, 206, 300, 301, 304 (which carries the
  header its 200 would, RFC 9110 15.4.5) and 308; never on an error, a 4xx or 5xx that a CDN
  would then serve for a minute after the fault is gone, nor on a temporary redirect.

A key matches its path and everything below it, at a segment boundary: ``/api/config`` covers
``/api/config`` and ``/api/config/flags`` but not ``/api/configs``; the longest match wins and
a decorator on the endpoint beats the table. Plain ASGI: it needs no framework.

Example::

    app.add_middleware(ss.CacheControl, rules={"/api/config": "public, max-age=60"})

    @app.get("/api/price")
    @ss.cache_control("public, max-age=5")
    async def price(): ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, final

from ..observe.asgi import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CACHEABLE_STATUSES", "CacheControl", "cache_control"]

T = TypeVar("T", bound=Callable[..., Any])

CACHEABLE_STATUSES = frozenset({200, 203, 204, 206, 300, 301, 304, 308})
_ATTRIBUTE = "slipstream_cache_control"


def _check_value(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"'{name}' must be a str, got {type(value).__name__}")
    if not value.strip() or "\n" in value or "\r" in value or not value.isascii():
        raise ValueError(f"'{name}' must be one line of ASCII header value, got {value!r}")
    return value


def cache_control(value: str) -> Callable[[T], T]:
    """Give one endpoint its ``Cache-Control`` (applied by the ``CacheControl`` middleware).

    Works above or below ``@app.get(...)``: it marks the function and returns it unchanged.

    Raises:
        TypeError, ValueError: ``value`` is not one line of ASCII text.
    """
    _check_value("value", value)

    def mark(fn: T) -> T:
        setattr(fn, _ATTRIBUTE, value)
        return fn

    return mark


def _endpoint_value(scope: Scope) -> str | None:
    endpoint = scope.get("endpoint")
    if endpoint is None:
        endpoint = getattr(scope.get("route"), "endpoint", None)
    value = getattr(endpoint, _ATTRIBUTE, None)
    return value if isinstance(value, str) else None


@final
class CacheControl:
    """ASGI middleware: add ``Cache-Control`` to cacheable responses of the configured routes.

    Args:
        app: the ASGI app.
        rules: path (or path prefix) to header value, e.g. ``{"/static/": "public,
            max-age=86400"}``; a key must start with ``/``.
        methods: request methods whose responses get the header.
        statuses: response statuses that get it (default ``CACHEABLE_STATUSES``).

    Raises:
        TypeError, ValueError: a rule that is not a path and one line of header text.
    """

    __slots__ = ("app", "methods", "rules", "statuses")

    def __init__(
        self,
        app: ASGIApp,
        rules: Mapping[str, str] | None = None,
        *,
        methods: Iterable[str] = ("GET", "HEAD"),
        statuses: Iterable[int] = CACHEABLE_STATUSES,
    ) -> None:
        self.app = app
        checked: dict[str, bytes] = {}
        for key, value in (rules or {}).items():
            if not isinstance(key, str) or not key.startswith("/"):
                raise ValueError(f"'rules' keys must be paths starting with '/', got {key!r}")
            checked[key.rstrip("/") or "/"] = _check_value(f"rules[{key!r}]", value).encode()
        # longest first: the most specific rule wins
        self.rules = dict(sorted(checked.items(), key=lambda kv: -len(kv[0])))
        self.methods = frozenset(m.upper() for m in _members("methods", methods, str))
        self.statuses = frozenset(_members("statuses", statuses, int))
        if not self.methods or not self.statuses:  # the middleware would never add the header
            raise ValueError(
                f"'methods' and 'statuses' must not be empty, got {methods!r}, {statuses!r}"
            )
        if any(not 100 <= code <= 599 for code in self.statuses):
            raise ValueError(f"'statuses' must be HTTP statuses (100-599), got {statuses!r}")

    def value_for(self, path: str) -> bytes | None:
        """The table's header value for ``path`` (None when no rule covers it)."""
        for key, value in self.rules.items():
            if key == "/" or path == key or path.startswith(key + "/"):
                return value
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method", "GET") not in self.methods:
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")  # before routing: a Mount may rewrite it

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in self.statuses:
                headers = message.get("headers", [])
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    marked = _endpoint_value(scope)
                    value = marked.encode() if marked else self.value_for(path)
                    if value is not None:
                        message["headers"] = [*headers, (b"cache-control", value)]
            await send(message)

        await self.app(scope, receive, send_with_header)


def _members(name: str, values: object, kind: type) -> list[Any]:
    """The members of ``values``, an iterable (not a string) of ``kind``; else a TypeError."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise TypeError(f"'{name}' must be an iterable of {kind.__name__}, got {values!r}")
    members = list(values)
    if not all(isinstance(v, kind) and not isinstance(v, bool) for v in members):
        raise TypeError(f"'{name}' must be an iterable of {kind.__name__}, got {values!r}")
    return members
