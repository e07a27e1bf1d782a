"""Lifespan: the app's Registry, TaskSet and LoopWatch open with the app and close with it, in an
order that loses nothing, over real HTTP (uvicorn on 127.0.0.1) and without a server."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

import slipstream as ss

from .conftest import Serve

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class Client:
    """A real object with the close the Registry calls; it records when it was closed."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True
        self.events.append("client closed")


def watch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "slipstream-loopwatch"]


class TestOverHTTP:
    def test_fastapi_app_opens_and_closes_everything_in_order(
        self, arun: Run, serving: Serve
    ) -> None:
        """Under FastAPI and uvicorn, requests see the primitives on the lifespan, on
        request.state and on app.state; at shutdown the inner lifespan closes first, a
        background task still waiting then finishes (drained) with its client still open, and
        only then does the registry close that client and the watch stop."""
        events: list[str] = []
        release = asyncio.Event()

        @contextlib.asynccontextmanager
        async def mine(app: Any) -> AsyncIterator[dict[str, Any]]:
            events.append(f"inner open, registry open: {lifespan.registry is not None}")
            yield {"greeting": "hello"}
            events.append("inner closed")
            release.set()  # the background task can only finish after this

        lifespan = ss.Lifespan(inner=mine, watch=ss.LoopWatch(slow_s=1.0))
        app = FastAPI(lifespan=lifespan)

        async def use(client: Client) -> None:
            await release.wait()
            events.append(f"task done, client closed: {client.closed}")

        @app.post("/work")
        async def work(request: Request) -> dict[str, Any]:
            client = await lifespan.registry.get("client", lambda: Client(events))
            await lifespan.tasks.spawn(use(client))
            return {
                "state": request.state.slipstream is lifespan,
                "app": request.app.state.slipstream is lifespan,
                "greeting": request.state.greeting,
            }

        async def main() -> tuple[Any, ...]:
            async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
                body = (await http.post("/work")).json()
                opened = (lifespan.tasks, lifespan.registry, lifespan.watch)
                running = (opened[0].statistics().running, len(watch_threads()))
            return body, opened, running

        body, (tasks, registry, watch), running = arun(main())
        assert {"state": True, "app": True, "greeting": "hello"} == body
        assert (1, 1) == running
        assert [
            "inner open, registry open: True",
            "inner closed",
            "task done, client closed: False",
            "client closed",
        ] == events
        assert 0 == tasks.statistics().running
        assert 1 == tasks.statistics().finished
        with pytest.raises(ss.RegistryClosed):
            arun(registry.get("client", lambda: Client(events)))
        assert [] == watch_threads()
        assert watch.statistics().beats > 0
        assert not lifespan.running
        with pytest.raises(RuntimeError, match="not running"):
            lifespan.tasks  # noqa: B018

    def test_starlette_app_runs_the_same_lifespan(self, arun: Run, serving: Serve) -> None:
        """Starlette takes the same object as lifespan=; the state reaches request.state."""
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        lifespan = ss.Lifespan(watch=False)

        async def home(request: Request) -> JSONResponse:
            stats = request.state.slipstream.statistics()
            return JSONResponse(sorted(stats))

        app = Starlette(routes=[Route("/", home)], lifespan=lifespan)

        async def main() -> Any:
            async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
                return (await http.get("/")).json()

        assert ["clients", "tasks"] == arun(main())
        assert not lifespan.running


class TestShutdown:
    def test_tasks_still_running_after_the_drain_timeout_are_cancelled(self, vrun: Run) -> None:
        """A background task that outlasts drain_timeout_s is cancelled at shutdown (and counted
        as cancelled), so shutdown never hangs on it."""
        lifespan = ss.Lifespan(watch=False, drain_timeout_s=5.0)

        async def main() -> ss.TaskSet:
            async with lifespan(None):
                tasks = lifespan.tasks
                await tasks.spawn(asyncio.sleep(3600))
            return tasks

        tasks = vrun(main())
        assert 1 == tasks.statistics().cancelled
        assert 0 == tasks.statistics().running

    def test_a_failing_inner_startup_closes_what_was_opened(self, arun: Run) -> None:
        """When the app's own lifespan fails at startup, the registry is closed, the watch
        stopped and the error reaches the server."""
        events: list[str] = []

        @contextlib.asynccontextmanager
        async def broken(app: Any) -> AsyncIterator[None]:
            await lifespan.registry.get("client", lambda: Client(events))
            raise OSError("database unreachable")
            yield

        lifespan = ss.Lifespan(inner=broken, watch=ss.LoopWatch(slow_s=1.0))

        async def main() -> None:
            async with lifespan(None):
                pass

        with pytest.raises(OSError, match="database unreachable"):
            arun(main())
        assert ["client closed"] == events
        assert [] == watch_threads()
        assert not lifespan.running

    def test_a_watch_passed_in_gets_its_callback_back(self, arun: Run) -> None:
        """A LoopWatch handed to the Lifespan keeps the on_block it came with after shutdown."""

        def mine(report: ss.BlockReport) -> None:
            pass

        watch = ss.LoopWatch(slow_s=1.0, on_block=mine)
        lifespan = ss.Lifespan(registry=False, tasks=False, watch=watch)

        async def main() -> bool:
            async with lifespan(None):
                return watch.on_block is not mine

        assert arun(main())  # wrapped while running
        assert mine is watch.on_block

    @pytest.mark.realtime
    def test_a_blocked_loop_is_counted_in_the_monitor(self, arun: Run) -> None:
        """A call that holds the loop for 300 ms is reported by the watch and counted in the
        lifespan's monitor as loop.blocked."""
        monitor = ss.Monitor()
        lifespan = ss.Lifespan(
            registry=False, tasks=False, watch=ss.LoopWatch(slow_s=0.05), monitor=monitor
        )

        async def main() -> None:
            async with lifespan(None):
                await asyncio.sleep(0.1)
                time.sleep(0.3)  # noqa: ASYNC251, SLP401  # the stall the watch must report
                await asyncio.sleep(0.2)

        arun(main())
        assert 1 <= monitor.report()["counters"].get("loop.blocked", 0)


class TestArguments:
    def test_wrong_kinds_are_refused_by_name(self) -> None:
        """A primitive given as something other than a bool or its own type is a TypeError
        naming the parameter; a negative drain timeout is a ValueError."""
        with pytest.raises(TypeError, match="'tasks' must be a bool or a TaskSet"):
            ss.Lifespan(tasks=ss.Registry())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'monitor'"):
            ss.Lifespan(monitor="default")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="drain_timeout_s"):
            ss.Lifespan(drain_timeout_s=-1)

    def test_one_app_at_a_time(self, vrun: Run) -> None:
        """Entering a Lifespan that is already running raises RuntimeError; a primitive turned
        off raises RuntimeError naming it."""
        lifespan = ss.Lifespan(watch=False, registry=False)

        async def main() -> None:
            async with lifespan(None):
                with pytest.raises(RuntimeError, match="registry=False"):
                    lifespan.registry  # noqa: B018
                with pytest.raises(RuntimeError, match="already running"):
                    async with lifespan(None):
                        pass

        vrun(main())
