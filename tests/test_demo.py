"""The flow-control demo over real HTTP: slipstream loses nothing where the naive loop does."""

from __future__ import annotations

import asyncio
from types import ModuleType

import pytest

from .conftest import load_example

pytestmark = pytest.mark.realtime


def load_demo() -> ModuleType:
    pytest.importorskip("httpx")
    pytest.importorskip("uvicorn")
    return load_example("flow_demo/run.py", "flow_demo_run")


def test_slipstream_gets_every_item_right_and_naive_does_not() -> None:
    """Against 10% transient 500s and 429s, ss.map returns all 120 correct answers; every
    server call beyond the 120 is a counted retry; the naive loop loses items to None."""
    demo = load_demo()
    server_args = ("--latency-ms", "2", "--p500", "0.1", "--p429", "0.03")
    with demo.running_server(*server_args) as url:
        ours = asyncio.run(demo.with_slipstream(url, 120, progress=False))
        naive = asyncio.run(demo.naive(url, 120))
    assert (120, 0) == (ours.correct, ours.failures)
    assert ours.retries > 0
    assert 120 + ours.retries == ours.calls
    assert naive.failures > 0
    assert 120 == naive.correct + naive.failures
