"""poll / Poller: backoff schedule, deadline, Retry-After, not-ready vs transient, statistics."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import pickle
import random
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import slipstream as ss
import slipstream.exceptions
import slipstream.typing
from slipstream import testing

from ..conftest import load_example

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class Job:
    """A check: None (not ready) ``pending`` times, then ``"done"``; records each call's time."""

    def __init__(self, pending: int, result: Any = "done") -> None:
        self.pending = pending
        self.result = result
        self.times: list[float] = []

    async def __call__(self) -> Any:
        self.times.append(asyncio.get_running_loop().time())
        return None if len(self.times) <= self.pending else self.result

    def waits(self) -> list[float]:
        return [round(b - a, 9) for a, b in zip(self.times, self.times[1:], strict=False)]


def response(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=httpx.Request("GET", "http://x/j"))


class TestSchedule:
    def test_backoff_waits_grow_by_multiplier_up_to_the_cap(self, vrun: Run) -> None:
        """The first check is immediate, then waits go initial_s * multiplier**n, capped."""
        job = Job(pending=5)
        poller = ss.Poller(initial_s=1, multiplier=2, max_interval_s=5, jitter=False)
        assert "done" == vrun(poller.poll(job))
        assert [1.0, 2.0, 4.0, 5.0, 5.0] == job.waits()
        stats = poller.statistics()
        assert (6, 5, 1, 0) == (stats.polls, stats.not_ready, stats.completed, stats.active)
        assert 17.0 == pytest.approx(stats.waited_s)

    def test_multiplier_one_polls_at_a_fixed_interval(self, vrun: Run) -> None:
        """multiplier=1 keeps every wait at initial_s."""
        job = Job(pending=4)
        vrun(ss.poll(job, initial_s=0.5, multiplier=1, jitter=False))
        assert [0.5] * 4 == job.waits()

    def test_jitter_draws_each_wait_below_the_schedule(self, vrun: Run) -> None:
        """jitter puts each wait between half and all of the schedule's; a seed repeats it."""
        first, second = Job(pending=6), Job(pending=6)
        options: dict[str, Any] = {
            "initial_s": 1,
            "multiplier": 2,
            "max_interval_s": 8,
            "jitter": True,
        }
        vrun(ss.poll(first, rng=random.Random(3), **options))
        vrun(ss.poll(second, rng=random.Random(3), **options))
        assert first.waits() == second.waits()
        for wait, base in zip(first.waits(), [1, 2, 4, 8, 8, 8], strict=True):
            assert base / 2 <= wait <= base
        assert len(set(first.waits())) > 3  # drawn, not fixed

    def test_backoff_s_is_the_unjittered_schedule(self) -> None:
        """backoff_s(n) is the wait after the n-th not-ready check, before jitter."""
        poller = ss.Poller(initial_s=0.1, multiplier=3, max_interval_s=2)
        assert [0.1, 0.3, 0.9, 2.0, 2.0] == [round(poller.backoff_s(n), 9) for n in range(1, 6)]


class TestDone:
    def test_none_is_not_ready_and_an_empty_list_is_done(self, vrun: Run) -> None:
        """By default only None means "not yet": a falsy state such as [] is a done state."""
        job = Job(pending=2, result=[])
        assert [] == vrun(ss.poll(job, jitter=False))
        assert 3 == len(job.times)

    def test_done_predicate_decides(self, vrun: Run) -> None:
        """done(state) chooses the final state; the states it rejects are polled past."""
        states = iter(["queued", "running", "running", "finished"])

        async def check() -> str:
            return next(states)

        assert "finished" == vrun(ss.poll(check, done=lambda s: s == "finished", jitter=False))

    def test_a_done_that_raises_propagates(self, vrun: Run) -> None:
        """An error in done() is a bug, raised at once, not retried."""

        async def check() -> dict[str, str]:
            return {}

        with pytest.raises(KeyError):
            vrun(ss.poll(check, done=lambda s: s["status"] == "done"))

    def test_a_sync_check_runs_in_a_thread(self, vrun: Run) -> None:
        """A sync check runs off the loop's thread; one returning a coroutine has it awaited."""
        loop_thread = threading.get_ident()
        seen: list[int] = []

        def blocking() -> str:
            seen.append(threading.get_ident())
            return "done" if len(seen) > 1 else None  # type: ignore[return-value]

        assert "done" == vrun(ss.poll(blocking, jitter=False))
        assert loop_thread not in seen
        job = Job(pending=1)
        assert "done" == vrun(ss.poll(lambda: job(), jitter=False))
        assert 2 == len(job.times)


class TestServerHints:
    def test_not_ready_with_retry_after_sets_the_next_wait(self, vrun: Run) -> None:
        """NotReady(retry_after_s=3) makes the next check come exactly 3 s later."""
        times: list[float] = []

        async def check() -> str:
            times.append(asyncio.get_running_loop().time())
            if len(times) == 1:
                raise ss.NotReady(retry_after_s=3)
            return "done"

        poller = ss.Poller(initial_s=0.1, jitter=False)
        vrun(poller.poll(check))
        assert 3.0 == times[1] - times[0]
        assert (1, 1) == (poller.statistics().server_waits, poller.statistics().not_ready)

    def test_the_retry_after_header_of_an_attached_response_is_read(self, vrun: Run) -> None:
        """NotReady(response=r) honours r's Retry-After header."""
        job = Job(pending=0)

        async def check() -> Any:
            if not job.times:
                job.times.append(asyncio.get_running_loop().time())
                raise ss.NotReady(response=response(202, {"Retry-After": "2"}))
            return await job()

        vrun(ss.poll(check, initial_s=0.1, jitter=False))
        assert [2.0] == job.waits()

    def test_a_returned_pending_response_is_honoured(self, vrun: Run) -> None:
        """A returned response that done() rejects has its Retry-After header honoured."""
        answers = [response(202, {"Retry-After": "4"}), response(202), response(200)]
        times: list[float] = []

        async def check() -> httpx.Response:
            times.append(asyncio.get_running_loop().time())
            return answers[len(times) - 1]

        final = vrun(ss.poll(check, done=lambda r: r.status_code == 200, initial_s=1, jitter=False))
        assert 200 == final.status_code
        assert [4.0, 1.0] == [b - a for a, b in itertools.pairwise(times)]

    def test_a_server_wait_is_capped(self, vrun: Run) -> None:
        """A Retry-After longer than max_retry_after_s waits max_retry_after_s."""
        times: list[float] = []

        async def check() -> str:
            times.append(asyncio.get_running_loop().time())
            if len(times) == 1:
                raise ss.NotReady(retry_after_s=3600)
            return "done"

        vrun(ss.poll(check, max_retry_after_s=30))
        assert 30.0 == times[1] - times[0]


class TestDeadline:
    def test_poll_timeout_carries_the_last_state(self, vrun: Run) -> None:
        """Past deadline_s a PollTimeout (a TimeoutError) is raised with the last state."""
        calls: list[float] = []

        async def check() -> str:
            calls.append(asyncio.get_running_loop().time())
            raise ss.NotReady(state={"status": "pending", "n": len(calls)})

        poller = ss.Poller(initial_s=1, multiplier=2, max_interval_s=4, jitter=False, deadline_s=10)
        with pytest.raises(ss.PollTimeout) as caught:
            vrun(poller.poll(check))
        error = caught.value
        assert isinstance(error, TimeoutError)
        assert isinstance(error, ss.SlipstreamError)
        assert {"status": "pending", "n": len(calls)} == error.state
        # checks at 0, 1, 3, 7, then the last wait is cut so one check starts at the deadline
        assert [0.0, 1.0, 3.0, 7.0, 10.0] == [t - calls[0] for t in calls]
        assert (5, 10.0, 10.0) == (error.polls, error.waited_s, error.deadline_s)
        assert 1 == poller.statistics().timed_out
        assert "deadline_s=10" in str(error)

    def test_no_deadline_polls_until_done(self, vrun: Run) -> None:
        """deadline_s=None keeps polling, here for 200 checks at the capped interval."""
        job = Job(pending=199)
        assert "done" == vrun(ss.poll(job, deadline_s=None, max_interval_s=60, jitter=False))
        assert 200 == len(job.times)

    def test_errors_share_the_deadline(self, vrun: Run) -> None:
        """Transient retries stop at the poll's deadline too; the error is the timeout's cause."""

        async def check() -> str:
            raise ConnectionResetError("down")

        retry = ss.Retry(attempts=100, initial_s=2, jitter=False, deadline_s=None)
        with pytest.raises(ss.PollTimeout) as caught:
            vrun(ss.poll(check, retry=retry, deadline_s=5))
        assert isinstance(caught.value.__cause__, ConnectionResetError)


def flaky(script: str) -> Callable[[], Coroutine[Any, Any, str | None]]:
    """A check that plays ``script``: E a connection error, V a ValueError, P pending, D done."""
    steps = iter(script)

    async def check() -> str | None:
        step = next(steps)
        if step == "E":
            raise ConnectionResetError("reset")
        if step == "V":
            raise ValueError("bug")
        return "done" if step == "D" else None

    return check


class TestTransient:
    def test_transient_errors_are_retried_and_counted_apart(self, vrun: Run) -> None:
        """Connection errors go to the retry policy and count as transient retries, not polls."""
        poller = ss.Poller(jitter=False)
        assert "done" == vrun(poller.poll(flaky("PEPED")))
        stats = poller.statistics()
        assert (5, 2, 2, 1, 0) == (
            stats.polls,
            stats.not_ready,
            stats.transient_retries,
            stats.completed,
            stats.failed,
        )

    def test_a_successful_check_resets_the_error_streak(self, vrun: Run) -> None:
        """attempts counts errors in a row: two, a pending answer, two more still succeed."""
        retry = ss.Retry(attempts=3, jitter=False)
        assert "done" == vrun(ss.poll(flaky("EEPEED"), retry=retry, jitter=False))

    def test_too_many_errors_in_a_row_reraise_the_original(self, vrun: Run) -> None:
        """Past the policy's attempts the check's own exception propagates, with a note."""
        poller = ss.Poller(retry=ss.Retry(attempts=3, jitter=False))
        with pytest.raises(ConnectionResetError) as caught:
            vrun(poller.poll(flaky("PEEE")))
        assert any("gave up after 3" in note for note in caught.value.__notes__)
        assert (1, 2) == (poller.statistics().failed, poller.statistics().transient_retries)

    def test_a_bug_is_not_retried(self, vrun: Run) -> None:
        """A ValueError is not transient: it propagates at the first occurrence."""
        poller = ss.Poller()
        with pytest.raises(ValueError, match="bug"):
            vrun(poller.poll(flaky("PVD")))
        assert (2, 0, 1) == (
            poller.statistics().polls,
            poller.statistics().transient_retries,
            poller.statistics().failed,
        )

    def test_polls_never_spend_the_retry_budget(self, vrun: Run) -> None:
        """50 not-ready checks leave an empty budget untouched; only an error asks it."""
        budget = ss.RetryBudget(ratio=0, min_per_s=0, max_balance=1)  # holds no token
        retry = ss.Retry(attempts=5, budget=budget)
        assert "done" == vrun(ss.poll(Job(pending=50), retry=retry, max_interval_s=1))
        assert (0, 0) == (budget.spent, budget.denied)
        with pytest.raises(ConnectionResetError):
            vrun(ss.poll(flaky("PPED"), retry=retry))
        assert (0, 1) == (budget.spent, budget.denied)


class TestCancellation:
    def test_cancel_during_a_wait_propagates(self, vrun: Run) -> None:
        """Cancelling a poll mid-wait raises CancelledError in the caller; nothing stays active."""
        poller = ss.Poller(initial_s=10, max_interval_s=10, jitter=False)

        async def main() -> None:
            task = asyncio.create_task(poller.poll(Job(pending=100)))
            await asyncio.sleep(15)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        vrun(main())
        assert (0, 2) == (poller.statistics().active, poller.statistics().polls)

    def test_an_outer_timeout_cuts_a_poll(self, vrun: Run) -> None:
        """asyncio.timeout around a poll still works: the CancelledError is not swallowed."""

        async def main() -> None:
            async with asyncio.timeout(3):
                await ss.poll(Job(pending=100), initial_s=1, multiplier=1)

        with pytest.raises(TimeoutError):
            vrun(main())


class TestStatistics:
    def test_one_poller_sums_over_concurrent_items_of_a_map(self, vrun: Run) -> None:
        """A Poller shared by 20 items of ss.map counts every item's checks exactly."""
        poller = ss.Poller(initial_s=1, multiplier=1, jitter=False)

        async def item(n: int) -> int:
            await poller.poll(Job(pending=n))
            return n

        results = vrun(ss.map(item, range(20), concurrency=20))
        assert [] == results.failures
        stats = poller.statistics()
        assert (sum(range(20)) + 20, sum(range(20)), 20, 0) == (
            stats.polls,
            stats.not_ready,
            stats.completed,
            stats.active,
        )
        assert float(sum(range(20))) == pytest.approx(stats.waited_s)
        assert stats == slipstream.typing.PollStatistics(
            **{f: getattr(stats, f) for f in stats.__dataclass_fields__}
        )

    def test_one_poller_serves_a_pipeline_stage(self, vrun: Run) -> None:
        """A Poller inside a pipeline stage finishes every item and counts all their polls."""
        poller = ss.Poller(initial_s=1, multiplier=1, jitter=False)

        async def wait_for(n: int) -> int:
            await poller.poll(Job(pending=n % 4))
            return n

        report = vrun(ss.Pipeline(range(12), [ss.Stage(wait_for, concurrency=4)]).run())
        assert (12, 0) == (report.ok, report.failed)
        assert (12 + 3 * (0 + 1 + 2 + 3), 12) == (
            poller.statistics().polls,
            poller.statistics().completed,
        )

    def test_on_not_ready_sees_each_state_and_wait(self, vrun: Run) -> None:
        """on_not_ready is called with the state after every not-ready check."""
        seen: list[Any] = []
        vrun(ss.poll(Job(pending=2), initial_s=1, jitter=False, on_not_ready=seen.append))
        assert [None, None] == seen


class TestArguments:
    @pytest.mark.parametrize(
        ("options", "error", "name"),
        [
            ({"initial_s": 0}, ValueError, "initial_s"),
            ({"initial_s": "1"}, TypeError, "initial_s"),
            ({"multiplier": 0.5}, ValueError, "multiplier"),
            ({"max_interval_s": 0.01, "initial_s": 1}, ValueError, "max_interval_s"),
            ({"jitter": 0.5}, TypeError, "jitter"),
            ({"deadline_s": -1}, ValueError, "deadline_s"),
            ({"retry": 3}, TypeError, "retry"),
            ({"max_retry_after_s": -1}, ValueError, "max_retry_after_s"),
            ({"on_not_ready": "log"}, TypeError, "on_not_ready"),
            ({"rng": 42}, TypeError, "rng"),
        ],
    )
    def test_bad_options_name_the_parameter(
        self, options: dict[str, Any], error: type[Exception], name: str
    ) -> None:
        """Each bad option raises ValueError or TypeError naming it."""
        with pytest.raises(error, match=f"'{name}'"):
            ss.Poller(**options)

    def test_bad_check_and_done_name_the_parameter(self, vrun: Run) -> None:
        """A check or done that is not callable raises TypeError naming it."""
        with pytest.raises(TypeError, match="'check'"):
            vrun(ss.poll("http://x/jobs/1"))  # type: ignore[call-overload]
        with pytest.raises(TypeError, match="'done'"):
            vrun(ss.poll(Job(0), done=True))  # type: ignore[arg-type]


class TestErrors:
    def test_the_signals_are_in_the_public_tree_and_pickle(self) -> None:
        """NotReady and PollTimeout are exported from slipstream.exceptions and pickle."""
        assert slipstream.exceptions.PollTimeout is ss.PollTimeout
        assert slipstream.exceptions.NotReady is ss.NotReady
        timeout = pickle.loads(
            pickle.dumps(ss.PollTimeout("pending", polls=3, waited_s=1.5, deadline_s=2))
        )
        assert ("pending", 3, 1.5, 2) == (
            timeout.state,
            timeout.polls,
            timeout.waited_s,
            timeout.deadline_s,
        )
        signal = pickle.loads(pickle.dumps(ss.NotReady(2.5, state="queued")))
        assert (2.5, "queued") == (signal.retry_after_s, signal.state)
        assert "retry after 2.5s" in str(signal)


@settings(max_examples=60, deadline=None)
@given(
    initial_s=st.floats(0.01, 5),
    multiplier=st.floats(1, 4),
    cap=st.floats(1, 20),
    jitter=st.booleans(),
    deadline_s=st.floats(1, 200),
    pending=st.integers(0, 60),
    seed=st.integers(0, 1000),
)
def test_schedule_property(
    initial_s: float,
    multiplier: float,
    cap: float,
    jitter: bool,
    deadline_s: float,
    pending: int,
    seed: int,
) -> None:
    """Waits never exceed max_interval_s, never shrink without jitter (but for the one cut by
    the deadline), and all of them add up to at most deadline_s."""
    job = Job(pending=pending)
    max_interval_s = max(cap, initial_s)
    poller = ss.Poller(
        initial_s=initial_s,
        multiplier=multiplier,
        max_interval_s=max_interval_s,
        jitter=jitter,
        deadline_s=deadline_s,
        rng=random.Random(seed),
    )

    async def main() -> None:
        with contextlib.suppress(ss.PollTimeout):
            await poller.poll(job)

    testing.run(main(), virtual_clock=True)
    waits = job.waits()
    assert all(w <= max_interval_s + 1e-9 for w in waits)
    assert sum(waits) <= deadline_s + 1e-6
    assert poller.statistics().waited_s <= deadline_s + 1e-6
    if not jitter:
        cut = round(job.times[-1] - job.times[0], 6) == round(deadline_s, 6)
        body = waits[:-1] if cut else waits
        assert all(b >= a - 1e-9 for a, b in itertools.pairwise(body))


_service = load_example("_job_service.py", "_job_service")


@pytest.mark.realtime
class TestAgainstAJobService:
    def test_fifty_jobs_polled_through_httpx_inside_map(self, arun: Run) -> None:
        """50 parse jobs of random length, polled over HTTP with 503s mixed in, all complete:
        every GET is a counted poll, every 503 a transient retry, and map's budget is unspent."""

        async def main() -> None:
            budget = ss.RetryBudget()
            poller = ss.Poller(
                initial_s=0.02,
                max_interval_s=0.25,
                deadline_s=20,
                retry=ss.Retry(attempts=4, initial_s=0.01, deadline_s=5),
            )
            async with (
                _service.JobService(seed=13, min_s=0.05, max_s=0.6, fail_every=7) as service,
                httpx.AsyncClient(base_url=service.url) as client,
            ):

                async def parse(doc: int) -> str:
                    job = (await client.post("/jobs", json={"doc": doc})).json()

                    async def check() -> httpx.Response:
                        r = await client.get(f"/jobs/{job['id']}")
                        r.raise_for_status()  # a 503 raises: a transient error, retried apart
                        return r  # a 202 carries Retry-After, which the poll honours

                    final = await poller.poll(check, done=lambda r: r.json()["status"] == "done")
                    return str(final.json()["result"])

                results = await ss.map(
                    parse, range(50), concurrency=50, retry=ss.Retry(budget=budget)
                )
            assert [] == results.failures
            assert {f"parsed {n}" for n in range(50)} == set(results.values())
            stats = poller.statistics()
            assert (50, 0, 0, 0) == (stats.completed, stats.failed, stats.timed_out, stats.active)
            assert service.gets == stats.polls
            assert service.failures == stats.transient_retries > 0
            assert stats.server_waits > 0
            assert (0, 0) == (budget.spent, budget.denied)
            latencies = service.latencies_s()
            assert 50 == len(latencies)
            assert all(latency >= 0 for latency in latencies)  # latency: bench_poll.py's job

        arun(main())
