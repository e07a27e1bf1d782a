"""A local job service on 127.0.0.1 for polling: submit a job, then ask until it is done.

``POST /jobs`` starts a job that takes a random (seeded) time and answers ``201 {"id": n}``;
``GET /jobs/{n}`` answers ``202 {"status": "pending"}`` with a ``Retry-After`` header (the time
left, rounded up to 0.1 s; off with ``hints=False``) until the job is done, then ``200
{"status": "done", "result": ...}``. The result is ``"parsed <id>"``, or, when the POST's
body is JSON with a ``"document"`` (markup such as ``<h1>Title</h1><p>text</p>``), the
document's text (``extract_text``: tags dropped, whitespace collapsed), so results can be
checked per document. ``fail_every=k`` makes every k-th GET a ``503`` (a transient
failure). Plain asyncio HTTP/1.1 with keep-alive, no dependencies, in the caller's process and
loop; it records every poll and when each job's completion was first seen::

    async with JobService(seed=7, min_s=0.05, max_s=0.5) as service:
        ...  # httpx.AsyncClient(base_url=service.url)
        print(service.gets, service.latencies_s())
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
from dataclasses import dataclass
from typing import Any


def extract_text(document: str) -> str:
    """What the service "parses" a document into: its text, tags dropped, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]*>", " ", document).split())


@dataclass
class Job:
    done_at: float
    result: str = ""
    polls: int = 0
    seen_done_at: float | None = None  # the loop time of the first GET that answered "done"


class JobService:
    """The service; ``async with`` starts and stops it (see the module doc)."""

    def __init__(
        self,
        *,
        seed: int = 0,
        min_s: float = 0.05,
        max_s: float = 0.5,
        hints: bool = True,
        fail_every: int = 0,
    ) -> None:
        self.rng = random.Random(seed)
        self.min_s, self.max_s = min_s, max_s
        self.hints = hints
        self.fail_every = fail_every
        self.jobs: list[Job] = []
        self.gets = 0
        self.failures = 0
        self.url = ""
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> JobService:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    def latencies_s(self) -> list[float]:
        """For each job seen done: seconds from its completion to the poll that noticed it."""
        return [j.seen_done_at - j.done_at for j in self.jobs if j.seen_done_at is not None]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                content = await reader.readexactly(length) if length else b""
                status, body, headers = self._answer(method, path, content)
                payload = json.dumps(body).encode()
                extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\n{extra}\r\n".encode("latin-1")
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    def _answer(
        self, method: str, path: str, content: bytes = b""
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        now = asyncio.get_running_loop().time()
        if method == "POST" and path == "/jobs":
            n = len(self.jobs)
            try:
                sent = json.loads(content) if content else None
            except ValueError:
                return 400, {"error": "the body is not JSON"}, {}
            document = sent.get("document") if isinstance(sent, dict) else None
            result = extract_text(document) if isinstance(document, str) else f"parsed {n}"
            done_at = now + self.rng.uniform(self.min_s, self.max_s)
            self.jobs.append(Job(done_at=done_at, result=result))
            return 201, {"id": n}, {}
        if method == "GET" and path.startswith("/jobs/"):
            job = self.jobs[int(path.rsplit("/", 1)[1])]
            self.gets += 1
            job.polls += 1
            if self.fail_every and self.gets % self.fail_every == 0:
                self.failures += 1
                return 503, {"error": "busy"}, {}
            left = job.done_at - now
            if left > 0:
                hint = {"Retry-After": f"{math.ceil(left * 10) / 10:.1f}"} if self.hints else {}
                return 202, {"status": "pending"}, hint
            if job.seen_done_at is None:
                job.seen_done_at = now
            return 200, {"status": "done", "result": job.result}, {}
        return 404, {"error": "no such route"}, {}
