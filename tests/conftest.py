"""Shared fixtures: virtual-time runs, and real services that skip (or fail, in CI) when absent."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest

from slipstream import testing

T = TypeVar("T")

REQUIRE_SERVICES = os.environ.get("SLIPSTREAM_REQUIRE_SERVICES") == "1"

HOW_TO_START = {
    "redis": 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
    "postgresql": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
}


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


EXAMPLES = Path(__file__).parents[1] / "examples"


def load_example(relative: str, name: str) -> ModuleType:
    """Import a file under examples/ (not a package) as a module called ``name``."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / relative)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def need_service(name: str, host: str, port: int) -> None:
    """Skip the test when the service is down, or fail when CI requires services."""
    if _port_open(host, port):
        return
    message = f"{name} is not running on {host}:{port}; start it with: {HOW_TO_START[name]}"
    if REQUIRE_SERVICES:
        pytest.fail(f"SLIPSTREAM_REQUIRE_SERVICES=1 but {message}")
    pytest.skip(message)


@pytest.fixture
def redis_url() -> str:
    need_service("redis", "127.0.0.1", 6379)
    return "redis://127.0.0.1:6379/0"


@pytest.fixture
def postgres_url() -> str:
    need_service("postgresql", "127.0.0.1", 5432)
    return "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def vrun() -> Callable[[Coroutine[Any, Any, T]], T]:
    """Run a coroutine on a virtual-clock loop (timers jump; results are exact)."""

    def run(main: Coroutine[Any, Any, T]) -> T:
        return testing.run(main, virtual_clock=True, debug=True)

    return run


@pytest.fixture
def arun() -> Callable[[Coroutine[Any, Any, T]], T]:
    """Run a coroutine on a real asyncio loop in debug mode."""

    def run(main: Coroutine[Any, Any, T]) -> T:
        return asyncio.run(main, debug=True)

    return run


@pytest.fixture(autouse=True)
def _testing_mode_off() -> Iterator[None]:
    """No test leaks test mode into the next."""
    yield
    testing.set_testing(False)
