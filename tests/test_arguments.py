"""Every public constructor and function names the parameter a bad argument was given for.

The numeric parameters are found from the public signatures (annotations naming ``int`` or
``float``), so a new constructor is covered the day it is exported: it only needs an entry in
``REQUIRED`` if it has required arguments. For each such parameter, hypothesis draws values of
the wrong type (strings, bytes, lists, dicts, ``None`` where ``None`` is not allowed) and
impossible values (NaN, negative numbers); each must raise ``TypeError`` or ``ValueError``
whose message names the parameter, never a bare ``'>=' not supported between ...``.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slipstream as ss
from slipstream import testing


async def _flush(rows: list[Any]) -> None:
    return None


def _fn(x: Any) -> Any:
    return x


async def _batch(keys: list[Any]) -> list[Any]:
    return keys


_TMP = Path(tempfile.mkdtemp(prefix="slipstream-arguments-"))  # removed at interpreter exit
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)

# The required arguments of each public callable that has numeric parameters.
REQUIRED: dict[str, Callable[[], dict[str, Any]]] = {
    "BatchWriter": lambda: {"flush": _flush},
    "SyncBatchWriter": lambda: {"flush": lambda rows: None},
    "DataLoader": lambda: {"batch_fn": _batch},
    "Rate": lambda: {"per_second": 1},
    "RateLimiter": lambda: {"rate": ss.Rate(per_second=1)},
    "Stage": lambda: {"fn": _fn},
    "Pipeline": lambda: {"source": [], "stages": []},
    "map": lambda: {"fn": _fn, "items": []},
    "stream": lambda: {"fn": _fn, "items": []},
    "prefetch": lambda: {"keys": [], "fetch_many": lambda keys: {}},
    "poll": lambda: {"check": lambda: "done"},
    "offload": lambda: {"__args__": (_fn, 1)},  # fn is positional-only
    "AdaptiveRate": dict,
    "RedisAdaptiveRate": lambda: {"client": _redis_client(), "key": "slipstream-arguments"},
    "CacheControl": lambda: {"app": _asgi_app},
    "QueryTiming": lambda: {"app": _asgi_app},
    "RequestLoader": lambda: {"batch_fn": _batch},
    "request_loader": lambda: {"batch_fn": _batch},
    "Watch": lambda: {"min_repeats": 5, "min_total_s": 0.05, "slow_s": 1.0, "record_to": None},
    "DirectorySource": lambda: {"root": str(Path(__file__).parent)},
    "query_source": lambda: {"target": sqlite3.connect(":memory:"), "sql": "SELECT 1"},
    "QuerySource": lambda: {"target": sqlite3.connect(":memory:"), "sql": "SELECT 1"},
    "asyncpg_flush": lambda: {"pool": object(), "table": "t", "columns": ["a"]},
    "sqlalchemy_flush": lambda: {"sessionmaker": _sessionmaker(), "table": _table()},
    "testing.set_testing": lambda: {"enabled": True},
    "chunked_delete": lambda: {
        "target": str(_TMP / "db.sqlite"),
        "table": "t",
        "where": "TRUE",
    },
}

# Parameters that take a number but also another kind of value on purpose.
NOT_NUMERIC_ONLY = {
    ("Rate", "per_minute"),  # Rate takes exactly one of per_second / per_minute
    ("Rate", "per_second"),
    ("testing.FakeClock", "start"),  # any reading, negative included
    ("CacheControl", "statuses"),  # a set of HTTP statuses: lists of ints are its values
}

# Values slipstream hands out (statistics, reports, outcomes): not constructed by users.
RESULT_TYPES = re.compile(
    r"(Statistics|Report|Summary|Progress|Status|Outcome|Plan|FileItem|BusyThread|QueryFinding|SlowQuery)$"
)


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    return None


def _redis_client() -> Any:
    import redis.asyncio as redis  # a client object; constructing it opens no connection

    return redis.Redis(host="127.0.0.1", port=6379)


def _table() -> Any:
    import sqlalchemy as sa

    return sa.Table("t", sa.MetaData(), sa.Column("a", sa.Integer, primary_key=True))


def _sessionmaker() -> Any:
    import sqlalchemy as sa
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(sa.create_engine("sqlite://"))


NUMERIC = re.compile(r"\b(int|float)\b")


def _public_callables() -> list[tuple[str, Callable[..., Any]]]:
    found = [(name, getattr(ss, name)) for name in ss.__all__]
    found += [(f"testing.{name}", getattr(testing, name)) for name in testing.__all__]
    return [(n, obj) for n, obj in found if callable(obj) and not _is_exception(obj)]


def _is_exception(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseException)


def _numeric_parameters() -> list[tuple[str, str, str]]:
    cases = []
    for name, obj in _public_callables():
        if RESULT_TYPES.search(name):
            continue
        try:
            sig = inspect.signature(obj)
        except (TypeError, ValueError):
            continue
        for p in sig.parameters.values():
            annotation = p.annotation if isinstance(p.annotation, str) else ""
            if p.name.startswith("_") or "Callable" in annotation or "Rate" in annotation:
                continue
            if NUMERIC.search(annotation) and not re.search(r"\b(bool|str)\b", annotation):
                cases.append((name, p.name, annotation))
    return cases


CASES = _numeric_parameters()


def _target(name: str) -> Any:
    return getattr(testing, name[8:]) if name.startswith("testing.") else getattr(ss, name)


def _call(name: str, kwargs: dict[str, Any]) -> Any:
    target = _target(name)
    result = target(*kwargs.pop("__args__", ()), **kwargs)
    if inspect.iscoroutine(result):
        try:
            return asyncio.run(asyncio.wait_for(result, 5))
        finally:
            result.close()
    if hasattr(result, "__aenter__") and "contextmanager" in type(result).__name__.lower():

        async def enter() -> None:
            async with result:
                pass

        return asyncio.run(enter())
    if hasattr(result, "__enter__") and "contextmanager" in type(result).__name__.lower():
        with result:
            return None
    return result


def _wrong_values(annotation: str) -> st.SearchStrategy[Any]:
    wrong_type = st.one_of(
        st.text(max_size=5),
        st.binary(max_size=5),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
        st.just(object()),
    )
    impossible = st.one_of(
        st.just(float("nan")),
        st.integers(max_value=-1),
        st.floats(max_value=-1e-6, allow_nan=False, allow_infinity=False),
    )
    if "None" not in annotation:
        wrong_type = st.one_of(wrong_type, st.none())
    return st.one_of(wrong_type, impossible)


def test_every_numeric_parameter_is_found() -> None:
    """The scan finds the parameters the issue named (so the test below covers them)."""
    found = {(c, p) for c, p, _ in CASES}
    for expected in [
        ("Retry", "initial_s"),
        ("Retry", "max_backoff_s"),
        ("Retry", "deadline_s"),
        ("Cache", "stale_ttl_s"),
        ("DataLoader", "max_wait_s"),
        ("BatchWriter", "max_wait_s"),
        ("CircuitBreaker", "min_calls"),
        ("LoopWatch", "slow_s"),
    ]:
        assert expected in found


def test_every_callable_with_required_arguments_is_listed() -> None:
    """A public callable with numeric parameters and required arguments needs REQUIRED."""
    missing = []
    for name in sorted({c for c, _, _ in CASES}):
        target = _target(name)
        required = [
            p.name
            for p in inspect.signature(target).parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]
        if required and name not in REQUIRED:
            missing.append((name, required))
    assert [] == missing


@pytest.mark.parametrize(("callable_name", "param", "annotation"), CASES)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_bad_numeric_arguments_name_their_parameter(
    callable_name: str, param: str, annotation: str, data: st.DataObject
) -> None:
    """A wrong type or an impossible value raises TypeError/ValueError naming the parameter."""
    if (callable_name, param) in NOT_NUMERIC_ONLY:
        return
    _TMP.mkdir(exist_ok=True)
    value = data.draw(_wrong_values(annotation), label=param)
    kwargs = REQUIRED.get(callable_name, dict)()
    kwargs[param] = value
    with pytest.raises((TypeError, ValueError)) as info:
        _call(callable_name, kwargs)
    assert f"'{param}'" in str(info.value)
