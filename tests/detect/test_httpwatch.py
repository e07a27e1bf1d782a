"""The httpx watcher: one request per item to the same route is an N+1, on a real server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

import slipstream as ss
from slipstream._impl.detect.httpwatch import http_fingerprint

T = TypeVar("T")
HERE = Path(__file__).read_text().splitlines()


def line_of(marker: str) -> int:
    """The line of this file that ends with the comment ``# marker``."""
    (line,) = [i for i, text in enumerate(HERE, 1) if text.endswith(f"# {marker}")]
    return line


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class TestHttpFingerprint:
    def test_ids_and_query_values_are_taken_out(self) -> None:
        """Numeric and UUID path segments become ?, and only the query's keys stay."""
        a = http_fingerprint("get", "api", "/users/42/orders", "b=1&a=2")
        b = http_fingerprint("GET", "api", "/users/7/orders", "a=9&b=0")
        uuid = http_fingerprint("GET", "api", "/u/123e4567-e89b-12d3-a456-426614174000", "")
        assert a == b == "GET api/users/?/orders?a&b"
        assert uuid == "GET api/u/?"


class TestHttpx:
    def test_a_get_per_item_is_slp201(self, server: str) -> None:
        """Sync httpx: a GET per id to one route is SLP201 at the line of the call."""
        with httpx.Client() as client, ss.watch(client, min_repeats=3, min_total_s=0.0) as w:
            for i in range(4):
                client.get(f"{server}/users/{i}")  # http-n+1
        assert w.report is not None
        (f,) = w.report.findings
        assert (f.code, f.path, f.line, f.count) == ("SLP201", __file__, line_of("http-n+1"), 4)
        assert f.fingerprint == "GET 127.0.0.1/users/?"
        assert f.total_s > 0

    def test_async_client_finds_the_awaiting_line(
        self, server: str, arun: Callable[[Coroutine[Any, Any, T]], T]
    ) -> None:
        """AsyncClient: the call site is the user's await line."""

        async def main() -> ss.WatchReport | None:
            client = httpx.AsyncClient()
            async with client, ss.watch(client, min_repeats=2, min_total_s=0.0) as w:
                for i in range(3):
                    await client.get(f"{server}/items/{i}")  # http-async
            return w.report

        report = arun(main())
        assert report is not None
        (f,) = report.findings
        assert (f.line, f.count) == (line_of("http-async"), 3)
