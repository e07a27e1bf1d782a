"""Retry: bounded attempts, backoff with full jitter, Retry-After, deadline, budget, re-raise."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import slipstream as ss
from slipstream import testing

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def http_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://127.0.0.1/x")
    response = httpx.Response(status, headers=headers, request=request)
    return httpx.HTTPStatusError(f"{status}", request=request, response=response)


class TestTransient:
    @pytest.mark.parametrize(
        ("exc", "expected"),
        [
            (ConnectionResetError(), True),
            (TimeoutError(), True),
            (http_error(429), True),
            (http_error(503), True),
            (http_error(404), False),
            (http_error(400), False),
            (httpx.ConnectError("refused"), True),
            (httpx.ReadTimeout("slow"), True),
            (ValueError("bug"), False),
            (KeyError("bug"), False),
        ],
    )
    def test_default_predicate(self, exc: BaseException, expected: bool) -> None:
        """Connection errors, timeouts and 408/425/429/5xx are transient; bugs are not."""
        assert expected == ss.is_transient(exc)


class TestRetryAfter:
    def test_seconds(self) -> None:
        """Retry-After in delta-seconds is read."""
        assert 7.0 == ss.retry_after_s(http_error(429, {"Retry-After": "7"}))

    def test_http_date(self) -> None:
        """Retry-After as an HTTP date is turned into seconds from now."""
        when = datetime.now(UTC) + timedelta(seconds=30)
        delay = ss.retry_after_s(http_error(503, {"Retry-After": format_datetime(when, True)}))
        assert delay is not None
        assert 28 <= delay <= 31

    def test_absent_or_garbage(self) -> None:
        """No header, or an unparseable one, gives None."""
        assert ss.retry_after_s(http_error(429)) is None
        assert ss.retry_after_s(http_error(429, {"Retry-After": "soon"})) is None
        assert ss.retry_after_s(ValueError()) is None


class Flaky:
    """Fails ``failures`` times with ``exc`` then returns 'ok'; counts calls and their times."""

    def __init__(self, failures: int, exc: Callable[[], Exception]) -> None:
        self.failures = failures
        self.exc = exc
        self.calls: list[float] = []

    async def __call__(self) -> str:
        self.calls.append(asyncio.get_running_loop().time())
        if len(self.calls) <= self.failures:
            raise self.exc()
        return "ok"


class TestRetryDecorator:
    def test_retries_until_success(self, vrun: Run) -> None:
        """Two transient failures, then success within 3 attempts."""
        flaky = Flaky(2, ConnectionResetError)
        wrapped = ss.retry(attempts=3)(flaky.__call__)
        assert "ok" == vrun(wrapped())
        assert 3 == len(flaky.calls)

    def test_reraises_the_original_exception(self, vrun: Run) -> None:
        """After the last attempt the very exception raised is re-raised, with a note."""
        raised: list[Exception] = []

        async def always() -> None:
            exc = ConnectionResetError("down")
            raised.append(exc)
            raise exc

        with pytest.raises(ConnectionResetError) as info:
            vrun(ss.retry(attempts=4)(always)())
        assert 4 == len(raised)
        assert raised[-1] is info.value
        assert any("gave up after 4" in n for n in info.value.__notes__)

    def test_non_matching_is_not_retried(self, vrun: Run) -> None:
        """A bug (ValueError) is raised at once by the default policy."""
        flaky = Flaky(5, lambda: ValueError("bug"))
        with pytest.raises(ValueError, match="bug"):
            vrun(ss.retry(attempts=5)(flaky.__call__)())
        assert 1 == len(flaky.calls)

    def test_on_predicate_and_types(self, vrun: Run) -> None:
        """on= accepts a type, a tuple or a predicate."""
        for on in (KeyError, (KeyError, OSError), lambda e: isinstance(e, KeyError)):
            flaky = Flaky(1, lambda: KeyError("k"))
            assert "ok" == vrun(ss.retry(attempts=2, on=on)(flaky.__call__)())

    def test_backoff_is_exponential_with_full_jitter(self, vrun: Run) -> None:
        """Each wait lies in [0, initial * 2**(n-1)] (capped)."""
        flaky = Flaky(6, ConnectionResetError)
        policy = ss.Retry(attempts=7, initial_s=1, max_backoff_s=8, deadline_s=None)
        vrun(ss.retry(policy)(flaky.__call__)())
        waits = [b - a for a, b in zip(flaky.calls, flaky.calls[1:], strict=False)]
        for n, wait in enumerate(waits, start=1):
            assert 0 <= wait <= min(8, 2 ** (n - 1)) + 1e-9

    def test_no_jitter_is_exact(self, vrun: Run) -> None:
        """jitter=False waits exactly initial * multiplier**(n-1)."""
        flaky = Flaky(3, ConnectionResetError)
        policy = ss.Retry(attempts=4, initial_s=0.5, multiplier=3, jitter=False)
        vrun(ss.retry(policy)(flaky.__call__)())
        waits = [round(b - a, 9) for a, b in zip(flaky.calls, flaky.calls[1:], strict=False)]
        assert [0.5, 1.5, 4.5] == waits

    def test_honours_retry_after_capped_and_jittered_up(self, vrun: Run) -> None:
        """A 429 with Retry-After: 5 waits 5-5.5 s; one asking 999 s is capped at 20 s."""
        flaky = Flaky(1, lambda: http_error(429, {"Retry-After": "5"}))
        vrun(ss.retry(attempts=2)(flaky.__call__)())
        assert 5.0 <= flaky.calls[1] - flaky.calls[0] <= 5.5
        flaky = Flaky(1, lambda: http_error(503, {"Retry-After": "999"}))
        policy = ss.Retry(attempts=2, max_retry_after_s=20, deadline_s=None)
        vrun(ss.retry(policy)(flaky.__call__)())
        assert 20.0 <= flaky.calls[1] - flaky.calls[0] <= 22.0

    def test_deadline_stops_retrying(self, vrun: Run) -> None:
        """No retry starts past deadline_s; the note says why."""
        flaky = Flaky(100, lambda: http_error(503, {"Retry-After": "4"}))
        policy = ss.Retry(attempts=100, deadline_s=10)
        with pytest.raises(httpx.HTTPStatusError) as info:
            vrun(ss.retry(policy)(flaky.__call__)())
        assert 3 == len(flaky.calls)  # t=0, ~4, ~8; the next would start past 10
        assert any("deadline_s=10" in n for n in info.value.__notes__)

    def test_budget_caps_retries(self, vrun: Run) -> None:
        """With a floor of 2 a second, ratio 0 and no time passing, only two retries happen."""
        budget = ss.RetryBudget(ratio=0.0, min_per_s=2, max_balance=2)
        policy = ss.Retry(attempts=5, budget=budget, initial_s=0)
        flaky = Flaky(1000, ConnectionResetError)
        wrapped = ss.retry(policy)(flaky.__call__)

        async def main() -> int:
            failures = 0
            for _ in range(5):
                try:
                    await wrapped()
                except ConnectionResetError as exc:
                    failures += 1
                    last = exc
            assert any("budget" in n for n in last.__notes__)
            return failures

        assert 5 == vrun(main())
        assert 5 + 2 == len(flaky.calls)
        assert (2, 5) == (budget.spent, budget.denied)

    def test_sync_function(self) -> None:
        """Sync functions are retried with time.sleep; testing mode makes the waits zero."""
        calls = []

        def flaky() -> str:
            calls.append(time.monotonic())
            if len(calls) < 3:
                raise ConnectionResetError
            return "ok"

        with testing.no_waits(attempts=3):
            assert "ok" == ss.retry(attempts=10, initial_s=5)(flaky)()
        assert calls[-1] - calls[0] < 1.0

    def test_testing_mode_caps_attempts(self, vrun: Run) -> None:
        """set_testing(True, attempts=1) turns retries off for users' tests."""
        flaky = Flaky(1, ConnectionResetError)
        testing.set_testing(True, attempts=1)
        with pytest.raises(ConnectionResetError):
            vrun(ss.retry(attempts=5)(flaky.__call__)())
        assert 1 == len(flaky.calls)

    def test_keeps_signature_metadata(self) -> None:
        """The decorator keeps the wrapped function's name and docstring."""

        @ss.retry()
        async def fetch(url: str) -> str:
            """Fetch it."""
            return url

        assert ("fetch", "Fetch it.") == (fetch.__name__, fetch.__doc__)

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"attempts": 0}, "attempts"),
            ({"initial_s": -1}, "initial_s"),
            ({"multiplier": 0.5}, "multiplier"),
            ({"deadline_s": 0}, "deadline_s"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, float], name: str) -> None:
        """Bad policy values raise ValueError naming the parameter."""
        with pytest.raises(ValueError, match=f"'{name}'"):
            ss.Retry(**kwargs)  # type: ignore[arg-type]

    def test_bare_decorator_gets_a_hint(self) -> None:
        """@ss.retry without parentheses is caught with a hint."""

        async def f() -> None:
            return None

        with pytest.raises(TypeError, match="HINT"):
            ss.retry(f)  # type: ignore[call-overload]

    def test_budget_refills_with_time(self, vrun: Run) -> None:
        """The per-second floor refills the budget: after 1 s at 3/s, three more retries."""
        budget = ss.RetryBudget(ratio=0.0, min_per_s=3, max_balance=3)

        async def main() -> list[bool]:
            spent = [budget.try_spend() for _ in range(4)]
            await asyncio.sleep(1)
            return spent + [budget.try_spend() for _ in range(4)]

        assert [True] * 3 + [False] + [True] * 3 + [False] == vrun(main())

    @given(attempt=st.integers(1, 200))
    def test_backoff_never_exceeds_cap(self, attempt: int) -> None:
        """The un-jittered backoff is monotone and capped at max_backoff_s for any attempt."""
        policy = ss.Retry(initial_s=0.1, max_backoff_s=10)
        assert policy.backoff_s(attempt) <= 10
        assert policy.backoff_s(attempt) <= policy.backoff_s(attempt + 1)


class TestRetryGenerators:
    """@ss.retry on generator functions: re-created until the first item, never after."""

    def test_sync_generator_is_recreated_before_its_first_item(self) -> None:
        """A generator failing before its first item is re-created; its items and return
        value come through once it works."""
        calls = []

        @ss.retry(attempts=3, initial_s=0)
        def rows() -> Any:
            calls.append(1)
            if len(calls) < 3:
                raise ConnectionResetError("not yet")
            yield 1
            yield 2
            return "end"

        def consume() -> tuple[list[int], Any]:
            gen = rows()
            out = []
            while True:
                try:
                    out.append(next(gen))
                except StopIteration as stop:
                    return out, stop.value

        assert ([1, 2], "end") == consume()
        assert 3 == len(calls)

    def test_sync_generator_error_after_first_item_is_not_retried(self) -> None:
        """After an item was delivered, an error propagates with a note saying why."""
        calls = []

        @ss.retry(attempts=5, initial_s=0)
        def rows() -> Any:
            calls.append(1)
            yield 1
            raise ConnectionResetError("midway")

        got: list[int] = []
        with pytest.raises(ConnectionResetError) as info:
            got.extend(rows())
        assert ([1], 1) == (got, len(calls))
        assert any("already yielded 1 item" in n for n in info.value.__notes__)

    def test_sync_generator_forwards_send_and_throw(self) -> None:
        """send() and throw() reach the inner generator."""

        @ss.retry(attempts=2)
        def echo() -> Any:
            got = yield "ready"
            while True:
                try:
                    got = yield f"echo {got}"
                except KeyError:
                    got = yield "caught"

        gen = echo()
        assert "ready" == next(gen)
        assert "echo 1" == gen.send(1)
        assert "caught" == gen.throw(KeyError("x"))
        gen.close()

    def test_async_generator(self, vrun: Run) -> None:
        """The async twin: retried until the first item (with backoff), then not."""
        calls: list[float] = []

        @ss.retry(attempts=3, initial_s=1, jitter=False)
        async def tokens() -> Any:
            calls.append(asyncio.get_running_loop().time())
            if len(calls) < 2:
                raise ConnectionResetError("not yet")
            yield "a"
            yield "b"
            raise ConnectionResetError("midway")

        async def main() -> list[str]:
            out: list[str] = []

            async def consume() -> None:
                gen = tokens()
                while True:
                    out.append(await gen.__anext__())

            with pytest.raises(ConnectionResetError) as info:
                await consume()
            assert any("already yielded 2 item" in n for n in info.value.__notes__)
            return out

        assert ["a", "b"] == vrun(main())
        assert [0.0, 1.0] == calls

    def test_async_generator_forwards_asend_and_athrow(self, vrun: Run) -> None:
        """asend() and athrow() reach the inner async generator; aclose() closes it."""
        closed = []

        @ss.retry(attempts=2)
        async def echo() -> Any:
            try:
                got = yield "ready"
                while True:
                    try:
                        got = yield f"echo {got}"
                    except KeyError:
                        got = yield "caught"
            finally:
                closed.append(True)

        async def main() -> list[str]:
            gen = echo()
            out = [await gen.__anext__(), await gen.asend(1), await gen.athrow(KeyError("x"))]
            await gen.aclose()
            return out

        assert ["ready", "echo 1", "caught"] == vrun(main())
        assert [True] == closed

    def test_async_callable_object_is_retried(self, vrun: Run) -> None:
        """An object with an async __call__ is retried (it was wrapped as a sync function,
        which returned the coroutine at once: a silent no-op)."""
        flaky = Flaky(2, ConnectionResetError)
        assert "ok" == vrun(ss.retry(attempts=3)(flaky)())
        assert 3 == len(flaky.calls)


class TestRetryAfterAndBudget:
    def test_server_paced_retry_spends_no_budget(self) -> None:
        """A retry that waits for a server's Retry-After leaves the budget untouched."""
        budget = ss.RetryBudget(ratio=0.0, min_per_s=0, max_balance=1)  # starts empty
        policy = ss.Retry(attempts=3, jitter=False)
        wait = policy.delay(http_error(429, {"Retry-After": "2"}), 1, 0.0, budget)
        assert 2.0 == wait
        assert (0, 0) == (budget.spent, budget.denied)

    def test_without_retry_after_the_budget_still_decides(self) -> None:
        """A 429 with no Retry-After is backoff of our choosing: an empty budget refuses it."""
        budget = ss.RetryBudget(ratio=0.0, min_per_s=0, max_balance=1)  # starts empty
        exc = http_error(429)
        assert ss.Retry(attempts=3).delay(exc, 1, 0.0, budget) is None
        assert 1 == budget.denied
        assert any("budget" in n for n in exc.__notes__)

    def test_capped_retry_after_spends(self) -> None:
        """A Retry-After beyond max_retry_after_s is capped by us, so it spends as usual."""
        budget = ss.RetryBudget(ratio=1.0, min_per_s=0, max_balance=1)
        budget.deposit()  # one token
        policy = ss.Retry(attempts=3, max_retry_after_s=5, jitter=False, deadline_s=None)
        assert 5.0 == policy.delay(http_error(503, {"Retry-After": "50"}), 1, 0.0, budget)
        assert 1 == budget.spent

    def test_server_paced_retries_still_count_toward_attempts(self, vrun: Run) -> None:
        """Retries on Retry-After stop at attempts, budget or not: attempts=3 is 3 calls."""
        flaky = Flaky(100, lambda: http_error(429, {"Retry-After": "1"}))
        budget = ss.RetryBudget(ratio=0.0, min_per_s=0, max_balance=1)
        with pytest.raises(httpx.HTTPStatusError) as info:
            vrun(ss.retry(ss.Retry(attempts=3, budget=budget))(flaky.__call__)())
        assert 3 == len(flaky.calls)
        assert 0 == budget.spent
        assert any("attempts=3" in n for n in info.value.__notes__)
