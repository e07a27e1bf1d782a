"""Serve a local demo endpoint on 127.0.0.1 in its own process (shared by the examples).

``serve(app)`` runs in the server process and prints ``PORT <n>`` once it listens;
``running(script, *args)`` starts such a script, waits until it answers, yields its URL and
stops it afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx


def serve(app: Any, port: int = 0) -> None:
    """Serve ``app`` with uvicorn on 127.0.0.1; print ``PORT <n>`` once bound."""
    import uvicorn

    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only then;
    # with proto 0 every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    except KeyboardInterrupt:
        sys.exit(0)


@contextlib.contextmanager
def running(script: Path, *args: str, health: str = "/stats") -> Iterator[str]:
    """Start ``script`` (which calls ``serve``); yield its base URL; stop it after."""
    proc = subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"{script.name} did not start: {line!r}")
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        for _ in range(100):  # wait until it answers
            try:
                httpx.get(f"{url}{health}", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
