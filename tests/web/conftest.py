"""Serve an ASGI app with uvicorn on 127.0.0.1 inside the test's own loop, lifespan on, so a
test reaches it over real HTTP and can look at the app's objects after it has shut down."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

Serve = Callable[[Any], contextlib.AbstractAsyncContextManager[str]]


@pytest.fixture
def serving() -> Serve:
    """``async with serving(app) as url:`` runs ``app`` (startup included) until the block ends,
    then shuts it down (its lifespan's shutdown included) before returning."""
    uvicorn = pytest.importorskip("uvicorn")

    @contextlib.asynccontextmanager
    async def serve(app: Any) -> AsyncIterator[str]:
        # IPPROTO_TCP, as examples/_serving.py explains: asyncio sets TCP_NODELAY only then
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:  # uvicorn offers no event for this
                if task.done():  # startup failed: raise its error
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.005)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await task
            sock.close()

    return serve
