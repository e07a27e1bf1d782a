"""``ss.poll`` and ``ss.Poller``: ask a job "are you done?" until it is, without spending retries.

A poll is not a failure. ``Retry(on=NotReady, attempts=15)`` treats every "still pending" as an
error: it spends the shared ``RetryBudget`` (meant to stop retry storms, so it runs dry on a
batch of slow jobs), counts polls as retries, and bounds the wait by an attempt count instead of
by time. Here the two are apart:

- "not ready yet" (the check returns a state that ``done`` rejects, or raises ``NotReady``) waits
  on the poll's own schedule and is counted as a poll; it never touches a budget;
- an error (a connection reset, a 503) goes to a ``Retry`` policy (default ``Retry()``: 3
  attempts in a row on ``is_transient``), counted as a transient retry; a successful check
  resets the streak;
- the server's word wins: ``NotReady(retry_after_s=...)``, or the ``Retry-After`` header of a
  returned (or attached) response, sets the next wait;
- ``deadline_s`` bounds the whole poll in time: no check starts after it (the last wait is cut
  short so one last check starts at the deadline), then ``PollTimeout`` with the last state.

The schedule before check n+1 (after n checks that were not ready) is ``min(max_interval_s,
initial_s * multiplier**(n-1))``; with ``jitter`` (on by default) each wait is drawn uniformly
from half to all of that (AWS's "equal jitter"): waits never exceed ``max_interval_s`` and never
collapse to zero, as full jitter's would (a request spent for nothing). Every wait is an
``asyncio.sleep`` on the running loop and every reading of time ``core.clock.now()``, so a
virtual-clock loop runs an hour of polling in milliseconds.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast, final

from ..core.callables import kind_of
from ..core.checks import check_callable, check_instance, check_number, check_seconds
from ..core.clock import now as _now
from ..core.errors import NotReady, PollTimeout
from ..core.threads import default_executor
from .retry_policy import Retry, retry_after_s

__all__ = ["PollStatistics", "Poller", "poll"]

T = TypeVar("T")

_MIN_HINT_S = 0.01  # a server that says "Retry-After: 0" forever cannot spin the loop


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class PollStatistics:
    """A snapshot of a ``Poller``'s counters, summed over every poll it ran.

    Attributes:
        polls: checks made (the first of each poll included).
        not_ready: checks that said "not yet" (a state ``done`` rejected, or ``NotReady``).
        transient_retries: checks that raised an error the ``retry`` policy retried.
        server_waits: waits whose length the server chose (``Retry-After``, ``retry_after_s``).
        completed: polls that returned a done state.
        timed_out: polls that raised ``PollTimeout``.
        failed: polls ended by an error from the check (not retried, or retried too often).
        active: polls in progress.
        waited_s: seconds slept between checks, over all polls.
    """

    polls: int
    not_ready: int
    transient_retries: int
    server_waits: int
    completed: int
    timed_out: int
    failed: int
    active: int
    waited_s: float


def _not_none(state: object) -> bool:
    return state is not None


def _server_hint(state: object) -> float | None:
    """The ``Retry-After`` of a returned state that is (or holds) a response, duck-typed."""
    if getattr(state, "headers", None) is None:
        return None
    return retry_after_s(NotReady(response=state))


@final
class Poller:
    """A polling schedule, reusable across items and tasks; its statistics sum over them all.

    Args:
        initial_s: the wait after the first "not ready" (> 0).
        multiplier: each further wait is ``multiplier`` times the last (>= 1; 1 polls at a
            fixed interval).
        max_interval_s: the longest wait of the own schedule (>= ``initial_s``).
        jitter: draw each wait of the own schedule uniformly from half to all of it ("equal
            jitter"), so pollers started together drift apart; False waits exactly.
        deadline_s: seconds from the first check after which no check starts; then
            ``PollTimeout``. None polls until done (or cancelled).
        retry: the policy for errors the check raises (default ``Retry()``: up to 3 checks in
            a row on transient errors, backoff with jitter). Use ``Retry(attempts=1)`` to let
            every error through at once. Its ``budget``, if any, is spent by these retries
            only, never by polls.
        max_retry_after_s: cap on a wait the server asks for.
        on_not_ready: called as ``on_not_ready(state)`` after each "not ready", before the
            wait (a sync function; for logs and progress).
        rng: a ``random.Random`` for the jitter (seed it for a repeatable schedule).

    Example::

        poller = ss.Poller(initial_s=0.2, max_interval_s=5, deadline_s=600)

        async def parse(doc_id):
            job = (await client.post("/jobs", json={"doc": doc_id})).json()

            async def check():
                response = await client.get(f"/jobs/{job['id']}")
                response.raise_for_status()
                return response

            done = await poller.poll(check, done=lambda r: r.json()["status"] == "done")
            return done.json()["result"]

        results = await ss.map(parse, doc_ids, concurrency=50)
        print(poller.statistics())
    """

    __slots__ = (
        "_counts",
        "_lock",
        "_rng",
        "_waited_s",
        "deadline_s",
        "initial_s",
        "jitter",
        "max_interval_s",
        "max_retry_after_s",
        "multiplier",
        "on_not_ready",
        "retry",
    )

    def __init__(
        self,
        *,
        initial_s: float = 0.1,
        multiplier: float = 2.0,
        max_interval_s: float = 5.0,
        jitter: bool = True,
        deadline_s: float | None = 300.0,
        retry: Retry | None = None,
        max_retry_after_s: float = 60.0,
        on_not_ready: Callable[[Any], object] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.initial_s = check_seconds("initial_s", initial_s)
        self.multiplier = check_number("multiplier", multiplier, minimum=1)
        self.max_interval_s = check_seconds("max_interval_s", max_interval_s)
        if self.max_interval_s < self.initial_s:
            raise ValueError(
                f"'max_interval_s' must be >= initial_s ({self.initial_s:g}), "
                f"got {max_interval_s!r}"
            )
        if not isinstance(jitter, bool):
            raise TypeError(f"'jitter' must be a bool, got {type(jitter).__name__}")
        self.jitter = jitter
        self.deadline_s = check_seconds("deadline_s", deadline_s, allow_none=True)
        if retry is not None:
            check_instance("retry", retry, Retry, "a Retry or None")
        self.retry = retry if retry is not None else Retry()
        self.max_retry_after_s = check_seconds(
            "max_retry_after_s", max_retry_after_s, allow_zero=True
        )
        self.on_not_ready = check_callable("on_not_ready", on_not_ready, allow_none=True)
        if rng is not None:
            check_instance("rng", rng, random.Random, "a random.Random or None")
        self._rng = rng if rng is not None else random.Random()
        # polls, not_ready, transient_retries, server_waits, completed, timed_out, failed, active
        self._counts = [0] * 8
        self._waited_s = 0.0
        self._lock = threading.Lock()  # one Poller may serve loops in several threads

    def backoff_s(self, n: int) -> float:
        """The un-jittered wait after the ``n``-th "not ready" of the own schedule (1-based)."""
        return min(self.max_interval_s, self.initial_s * self.multiplier ** min(n - 1, 256))

    def statistics(self) -> PollStatistics:
        """A snapshot of the counters, summed over every poll this Poller ran."""
        with self._lock:
            c = list(self._counts)
            waited = self._waited_s
        return PollStatistics(
            polls=c[0],
            not_ready=c[1],
            transient_retries=c[2],
            server_waits=c[3],
            completed=c[4],
            timed_out=c[5],
            failed=c[6],
            active=c[7],
            waited_s=waited,
        )

    def _count(self, index: int, by: int = 1) -> None:
        with self._lock:
            self._counts[index] += by

    async def poll(
        self,
        check: Callable[[], Awaitable[T]] | Callable[[], T],
        *,
        done: Callable[[T], bool] | None = None,
    ) -> T:
        """Call ``check`` until ``done(state)`` is true; return that state.

        Args:
            check: a zero-argument async function (or a sync one, run in slipstream's thread
                pool; one that returns an awaitable has it awaited) returning the job's state.
                It may raise ``NotReady`` to say "not yet" (with a delay or a response).
            done: whether a state is final (default: any state that is not None, so a check
                may return None for "not yet"; an empty list is a done state). A returned
                state that is not done and has ``.headers`` (a response) has its
                ``Retry-After`` honoured.

        Raises:
            PollTimeout: ``deadline_s`` passed; ``.state`` is the last state seen.
            Exception: what the check raised, when the ``retry`` policy gave up on it.
        """
        check_callable("check", check, hint="give a function to call, e.g. lambda: get(url)")
        is_done = check_callable("done", done, allow_none=True) or _not_none
        call = _caller(check)
        start = _now()
        step = streak = polls = 0
        streak_start = 0.0
        waited = 0.0
        state: Any = None
        self._count(7)
        try:
            while True:
                polls += 1
                self._count(0)
                error: Exception | None = None
                try:
                    result = await call()
                except NotReady as signal:
                    state = signal.state if signal.state is not None else state
                    streak = 0
                    wait, step = self._not_ready(retry_after_s(signal), step)
                except Exception as exc:
                    if streak == 0:
                        streak_start = _now()
                    streak += 1
                    retry_wait = self.retry.delay(exc, streak, _now() - streak_start)
                    if retry_wait is None:
                        self._count(6)
                        raise
                    self._count(2)
                    error, wait = exc, retry_wait
                else:
                    streak = 0
                    if is_done(result):  # a done() that raises is a bug: it propagates
                        self._count(4)
                        return cast(T, result)
                    state = result
                    wait, step = self._not_ready(_server_hint(result), step)
                if self.deadline_s is not None:
                    remaining = self.deadline_s - (_now() - start)
                    if remaining <= 0:
                        self._count(5)
                        raise PollTimeout(
                            state, polls=polls, waited_s=waited, deadline_s=self.deadline_s
                        ) from error
                    wait = min(wait, remaining)
                if error is None and self.on_not_ready is not None:
                    self.on_not_ready(state)
                before = _now()
                await asyncio.sleep(wait)
                slept = _now() - before
                waited += slept
                with self._lock:
                    self._waited_s += slept
        finally:
            self._count(7, -1)

    def _not_ready(self, hint: float | None, step: int) -> tuple[float, int]:
        """Count a "not ready"; the next wait (the server's, else the schedule's) and step."""
        self._count(1)
        if hint is not None:
            self._count(3)
            return max(_MIN_HINT_S, min(hint, self.max_retry_after_s)), step
        step += 1
        base = self.backoff_s(step)
        if self.jitter:
            base *= 0.5 + 0.5 * self._rng.random()
        return base, step

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<Poller initial_s={self.initial_s:g} multiplier={self.multiplier:g} "
            f"max_interval_s={self.max_interval_s:g} polls={s.polls} completed={s.completed}>"
        )


def _caller(check: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    """``check`` as an async function: awaited if async, else run in the thread pool."""
    if kind_of(check) == "async":
        return check

    async def in_thread() -> Any:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        value = await loop.run_in_executor(default_executor(), ctx.run, check)
        if inspect.isawaitable(value):  # a sync callable that returned an awaitable
            return await value
        return value

    return in_thread


async def poll(
    check: Callable[[], Awaitable[T]] | Callable[[], T],
    *,
    done: Callable[[T], bool] | None = None,
    initial_s: float = 0.1,
    multiplier: float = 2.0,
    max_interval_s: float = 5.0,
    jitter: bool = True,
    deadline_s: float | None = 300.0,
    retry: Retry | None = None,
    max_retry_after_s: float = 60.0,
    on_not_ready: Callable[[Any], object] | None = None,
    rng: random.Random | None = None,
) -> T:
    """Call ``check`` until ``done(state)`` is true and return that state (see ``Poller``).

    A one-off ``Poller``; make one ``Poller`` and call its ``poll`` to share a schedule and
    sum statistics over many jobs.

    Raises:
        PollTimeout: ``deadline_s`` passed; ``.state`` is the last state seen.

    Example::

        async def check():
            response = await client.get(f"/jobs/{job_id}")
            response.raise_for_status()
            if response.json()["status"] != "done":
                raise ss.NotReady(response=response)  # honours its Retry-After
            return response.json()

        job = await ss.poll(check, max_interval_s=2, deadline_s=120)
    """
    poller = Poller(
        initial_s=initial_s,
        multiplier=multiplier,
        max_interval_s=max_interval_s,
        jitter=jitter,
        deadline_s=deadline_s,
        retry=retry,
        max_retry_after_s=max_retry_after_s,
        on_not_ready=on_not_ready,
        rng=rng,
    )
    return await poller.poll(check, done=done)
