"""``ss.Lifespan``: the app-wide primitives opened and closed with an ASGI app.

A service built on slipstream needs a ``Registry`` (its clients), a ``TaskSet`` (its
fire-and-forget work), a ``LoopWatch`` (its loop lag) and a ``Monitor``, opened when the app
starts and closed when it stops, in an order that loses nothing: background tasks are drained
before the registry closes the clients they use, and the watch keeps watching until the end.
``Lifespan`` does that as FastAPI's and Starlette's ``lifespan=``: a callable that takes the
app and returns an async context manager. It speaks plain ASGI lifespan (it imports no
framework), so it also works under any server that runs an app's lifespan.

Open, in this order: the watch, the registry, the task set, then the user's own lifespan
(``inner``), which can already use all three. Close in reverse: the user's lifespan, the task
set (drained for up to ``drain_timeout_s``, then cancelled), the registry (every client
closed), the watch.

Example::

    lifespan = ss.Lifespan(tasks=ss.TaskSet(limit=100), inner=my_lifespan)
    app = FastAPI(lifespan=lifespan)

    @app.post("/events")
    async def event(body: Event) -> None:
        await lifespan.tasks.spawn(store(body))
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, TypeVar, final

from ..clients.registry import Registry
from ..core.checks import check_callable, check_seconds
from ..loop.taskset import TaskSet
from ..loop.watch import BlockReport, LoopWatch
from ..observe.monitor import Monitor
from ..observe.monitor import monitor as default_monitor

__all__ = ["Lifespan"]

logger = logging.getLogger("slipstream.web")
T = TypeVar("T")

InnerLifespan = Callable[[Any], AbstractAsyncContextManager["Mapping[str, Any] | None"]]
STATE_KEY = "slipstream"  # the name in the lifespan state and on app.state


def _pick(name: str, value: T | bool, kind: type[T], make: Callable[[], T]) -> T | None:
    if value is True:
        return make()
    if value is False or value is None:
        return None
    if isinstance(value, kind):
        return value
    raise TypeError(
        f"'{name}' must be a bool or a {kind.__name__}, got {type(value).__name__}"
        f"\nHINT: {name}=True makes a default one; pass your own {kind.__name__}(...) to "
        "configure it"
    )


@final
class Lifespan:
    """Open a ``Registry``, ``TaskSet`` and ``LoopWatch`` with an ASGI app and close them with it.

    Pass it as ``FastAPI(lifespan=...)`` or ``Starlette(lifespan=...)``. While the app runs, the
    primitives are the attributes ``registry``, ``tasks``, ``watch`` and ``monitor`` of this
    object, the same object is ``app.state.slipstream``, and the lifespan state (what
    ``request.state`` shows) holds it under ``"slipstream"`` together with whatever the
    ``inner`` lifespan yields.

    Args:
        registry: ``True`` makes a ``Registry`` per run of the app; pass one to use yours (it
            is closed at shutdown, so it serves one run); ``False`` for none.
        tasks: ``True`` makes an unbounded ``TaskSet`` per run; pass ``ss.TaskSet(limit=...)``
            to bound it; ``False`` for none.
        watch: ``True`` makes a ``LoopWatch()``; pass one to set ``slow_s``; ``False`` for
            none. Each stall it reports is also counted in the monitor as ``loop.blocked`` or
            ``loop.starved``.
        monitor: where stalls are counted and what ``monitor`` returns (default: the
            process-wide ``ss.monitor``). A monitor has nothing to close.
        inner: the app's own lifespan, ``inner(app)`` returning an async context manager
            (``@contextlib.asynccontextmanager``); it runs inside, after everything here is
            open and before anything here closes; a mapping it yields joins the state.
        drain_timeout_s: at shutdown, how long to wait for background tasks before
            cancelling the rest (None: wait for all of them).

    Raises:
        TypeError: an argument of the wrong kind.
        RuntimeError: entering a ``Lifespan`` that is already running (one app at a time).
    """

    def __init__(
        self,
        *,
        registry: Registry | bool = True,
        tasks: TaskSet | bool = True,
        watch: LoopWatch | bool = True,
        monitor: Monitor | None = None,
        inner: InnerLifespan | None = None,
        drain_timeout_s: float | None = 30.0,
    ) -> None:
        for name, value, kind in (
            ("registry", registry, Registry),
            ("tasks", tasks, TaskSet),
            ("watch", watch, LoopWatch),
        ):
            _pick(name, value, kind, lambda: None)  # type check only; made per run below
        if monitor is not None and not isinstance(monitor, Monitor):
            raise TypeError(f"'monitor' must be a Monitor or None, got {type(monitor).__name__}")
        self._want_registry = registry
        self._want_tasks = tasks
        self._want_watch = watch
        self._monitor = monitor if monitor is not None else default_monitor
        self._inner = check_callable("inner", inner, allow_none=True)
        self.drain_timeout_s = check_seconds("drain_timeout_s", drain_timeout_s, allow_none=True)
        self._registry: Registry | None = None
        self._tasks: TaskSet | None = None
        self._watch: LoopWatch | None = None
        self._previous_on_block: Callable[[BlockReport], Any] | None = None
        self._running = False

    # -- what the app uses ------------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        """The app's client registry (raises ``RuntimeError`` outside the app's run)."""
        return self._get("registry", self._registry)

    @property
    def tasks(self) -> TaskSet:
        """The app's background task set (raises ``RuntimeError`` outside the app's run)."""
        return self._get("tasks", self._tasks)

    @property
    def watch(self) -> LoopWatch:
        """The app's loop watch (raises ``RuntimeError`` outside the app's run)."""
        return self._get("watch", self._watch)

    @property
    def monitor(self) -> Monitor:
        return self._monitor

    @property
    def running(self) -> bool:
        return self._running

    def _get(self, name: str, value: T | None) -> T:
        if value is not None:
            return value
        if not self._running:
            raise RuntimeError(
                f"the app is not running: Lifespan.{name} exists only between startup and "
                "shutdown\nHINT: pass the Lifespan as FastAPI(lifespan=...) and use it from "
                "requests or from the inner lifespan"
            )
        raise RuntimeError(f"this Lifespan was made with {name}=False")

    def statistics(self) -> dict[str, Any]:
        """What the open primitives report: ``tasks`` (TaskSetStatistics), ``loop``
        (LoopWatchStatistics), ``clients`` (the registry's status); each key only when that
        primitive is open."""
        found: dict[str, Any] = {}
        if self._tasks is not None:
            found["tasks"] = self._tasks.statistics()
        if self._watch is not None:
            found["loop"] = self._watch.statistics()
        if self._registry is not None:
            found["clients"] = self._registry.status()
        return found

    # -- running with the app ---------------------------------------------------------------

    def __call__(self, app: Any) -> AbstractAsyncContextManager[dict[str, Any]]:
        """The async context manager the framework enters at startup and leaves at shutdown."""
        return self._run(app)

    @contextlib.asynccontextmanager
    async def _run(self, app: Any) -> AsyncIterator[dict[str, Any]]:
        if self._running:
            raise RuntimeError("this Lifespan is already running an app; make one Lifespan per app")
        self._running = True
        try:
            async with contextlib.AsyncExitStack() as stack:
                stack.callback(self._forget)
                watch = _pick("watch", self._want_watch, LoopWatch, LoopWatch)
                if watch is not None:
                    self._start_watch(watch)
                    stack.push_async_callback(self._stop_watch, watch)
                registry = _pick("registry", self._want_registry, Registry, Registry)
                if registry is not None:
                    self._registry = registry
                    stack.push_async_callback(registry.aclose)
                tasks = _pick("tasks", self._want_tasks, TaskSet, lambda: TaskSet(name="app"))
                if tasks is not None:
                    self._tasks = tasks
                    stack.push_async_exit(self._close_tasks)
                state: dict[str, Any] = {STATE_KEY: self}
                app_state = getattr(app, "state", None)
                if app_state is not None:
                    setattr(app_state, STATE_KEY, self)
                if self._inner is not None:
                    extra = await stack.enter_async_context(self._inner(app))
                    if extra is not None:
                        state.update(extra)
                yield state
        finally:
            self._running = False

    def _forget(self) -> None:
        self._registry = self._tasks = self._watch = None

    def _start_watch(self, watch: LoopWatch) -> None:
        previous = watch.on_block
        monitor = self._monitor

        def on_block(report: BlockReport) -> None:  # the watchdog thread; count() is locked
            monitor.count(f"loop.{report.kind}")
            if previous is not None:
                previous(report)

        watch.on_block = on_block
        watch.start()
        self._watch = watch
        self._previous_on_block = previous

    async def _stop_watch(self, watch: LoopWatch) -> None:
        await watch.stop()
        watch.on_block = self._previous_on_block

    async def _close_tasks(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        tasks = self._tasks
        assert tasks is not None
        if exc is None and await tasks.drain(self.drain_timeout_s):
            return False
        left = tasks.statistics().running
        if exc is None:
            logger.warning(
                "%s: %d background task(s) still running after %ss at shutdown; cancelling them",
                tasks.name,
                left,
                self.drain_timeout_s,
            )
        await tasks.cancel_all()
        return False

    def __repr__(self) -> str:
        state = "running" if self._running else "idle"
        parts = [name for name in ("registry", "tasks", "watch") if getattr(self, f"_{name}")]
        return f"<Lifespan {state} open={','.join(parts) or '-'}>"
