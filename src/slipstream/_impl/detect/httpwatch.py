"""The HTTP client watcher: httpx's event hooks, so one GET per item to the same route is an
N+1 too.

A request's fingerprint is its method, host and path with id-like segments (numbers, UUIDs,
long hex) replaced by ``?`` and the query string reduced to its sorted keys:
``GET api.local/users/?`` for ``GET http://api.local/users/42?fields=name``. GET and HEAD
count as reads (SLP201), POST, PUT, PATCH and DELETE as writes (SLP202). The duration is the
time to the response's headers (the body is read later, by the caller).
"""

from __future__ import annotations

import re
from time import perf_counter
from typing import Any

from .fingerprint import Kind
from .scope import CURRENT, call_site, record_as

__all__ = ["http_fingerprint", "instrument_httpx", "is_httpx_client"]

_ID = re.compile(r"^(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F-]{27,}|[0-9a-fA-F]{16,})$")
_KINDS: dict[str, Kind] = {
    "GET": "select",
    "HEAD": "select",
    "POST": "insert",
    "PUT": "update",
    "PATCH": "update",
    "DELETE": "delete",
}
_KEY = "slipstream_t0"


def http_fingerprint(method: str, host: str, path: str, query: str) -> str:
    """``METHOD host/path`` with id-like path segments as ``?`` and only the query's keys."""
    parts = ["?" if _ID.match(p) else p for p in path.split("/")]
    text = f"{method.upper()} {host}{'/'.join(parts)}"
    if query:
        keys = sorted({kv.split("=", 1)[0] for kv in query.split("&") if kv})
        text += "?" + "&".join(keys)
    return text


def _started(request: Any) -> None:
    if CURRENT.get() is not None:
        request.extensions[_KEY] = perf_counter()


def _answered(response: Any) -> None:
    scope = CURRENT.get()
    if scope is None:
        return
    request = response.request
    t0 = request.extensions.get(_KEY)
    url = request.url
    fp = http_fingerprint(request.method, url.host, url.path, url.query.decode("ascii", "replace"))
    duration_s = None if t0 is None else perf_counter() - t0
    record_as(scope, fp, _KINDS.get(request.method.upper(), "other"), duration_s, call_site(3))


async def _started_async(request: Any) -> None:
    _started(request)


async def _answered_async(response: Any) -> None:
    _answered(response)


def is_httpx_client(target: object) -> bool:
    """Is ``target`` an ``httpx.Client`` or ``httpx.AsyncClient``?"""
    import sys

    httpx = sys.modules.get("httpx")
    return httpx is not None and isinstance(target, (httpx.Client, httpx.AsyncClient))


def instrument_httpx(client: Any) -> None:
    """Add the request and response hooks to an httpx client (once)."""
    import httpx

    hooks = client.event_hooks
    if isinstance(client, httpx.AsyncClient):
        pair: tuple[Any, Any] = (_started_async, _answered_async)
    else:
        pair = (_started, _answered)
    if pair[0] not in hooks["request"]:
        hooks["request"].append(pair[0])
        hooks["response"].append(pair[1])
    client.event_hooks = hooks
