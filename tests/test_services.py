"""The service gate: tests needing PostgreSQL or Redis skip locally and fail in CI."""

from __future__ import annotations

import socket

import pytest

from . import conftest


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_missing_service_skips_with_how_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without SLIPSTREAM_REQUIRE_SERVICES a missing service skips, saying how to start it."""
    monkeypatch.setattr(conftest, "REQUIRE_SERVICES", False)
    with pytest.raises(pytest.skip.Exception, match="redis-server --daemonize yes"):
        conftest.need_service("redis", "127.0.0.1", closed_port())


def test_missing_service_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    """With SLIPSTREAM_REQUIRE_SERVICES=1 a missing service fails the test."""
    monkeypatch.setattr(conftest, "REQUIRE_SERVICES", True)
    with pytest.raises(pytest.fail.Exception, match="pg_ctlcluster"):
        conftest.need_service("postgresql", "127.0.0.1", closed_port())
