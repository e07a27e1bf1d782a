"""Pool settings read from the environment, shaped for SQLAlchemy, asyncpg and httpx.

Seed 002 hard-coded ``pool_size=20, max_overflow=10, pool_pre_ping=True, pool_recycle=3600``;
seed 003 asked for pool sizes from the environment. ``PoolSettings.from_env("DB")`` reads
``SLIPSTREAM_DB_POOL_SIZE``, ``..._MAX_OVERFLOW``, ``..._RECYCLE_S``, ``..._TIMEOUT_S`` and
``..._PRE_PING`` (explicit arguments win), validates them with errors naming the variable, and
hands out the keyword arguments each library wants. It is frozen, so it is also the registry key:
one pool per distinct configuration per process.

Example::

    settings = ss.PoolSettings.from_env("DB", url=os.environ["DATABASE_URL"])
    engine = await registry.get("db", make_engine, settings, close=lambda e: e.dispose())
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, final

from ..core.checks import check_int, check_seconds
from ..core.settings import env_float, env_int

__all__ = ["PoolSettings"]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class PoolSettings:
    """Sizes and health settings of a connection pool.

    Args:
        url: what to connect to (a database URL, a base URL); part of the registry key.
        size: connections kept open.
        max_overflow: extra connections allowed under load (SQLAlchemy).
        recycle_s: replace a connection older than this (stale connections behind NAT or a
            proxy; seed 004 lost its connection in long runs).
        timeout_s: how long to wait for a free connection.
        pre_ping: check a connection before handing it out.
    """

    url: str = ""
    size: int = 10
    max_overflow: int = 10
    recycle_s: float = 1800.0
    timeout_s: float = 30.0
    pre_ping: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.url, str):
            raise TypeError(f"'url' must be a str, got {type(self.url).__name__}")
        object.__setattr__(self, "size", check_int("size", self.size, minimum=1))
        object.__setattr__(
            self, "max_overflow", check_int("max_overflow", self.max_overflow, minimum=0)
        )
        object.__setattr__(self, "recycle_s", check_seconds("recycle_s", self.recycle_s))
        object.__setattr__(self, "timeout_s", check_seconds("timeout_s", self.timeout_s))
        if not isinstance(self.pre_ping, bool):
            raise TypeError(f"'pre_ping' must be a bool, got {type(self.pre_ping).__name__}")

    @classmethod
    def from_env(cls, name: str, **explicit: Any) -> PoolSettings:
        """Read ``SLIPSTREAM_<NAME>_POOL_SIZE`` and friends; explicit arguments win."""
        prefix = f"SLIPSTREAM_{name.upper()}_"
        values: dict[str, Any] = {}
        if os.environ.get(prefix + "POOL_SIZE") is not None:
            values["size"] = env_int(prefix + "POOL_SIZE", 10)
        if os.environ.get(prefix + "MAX_OVERFLOW") is not None:
            values["max_overflow"] = env_int(prefix + "MAX_OVERFLOW", 10, minimum=0)
        for field, var in (("recycle_s", "RECYCLE_S"), ("timeout_s", "TIMEOUT_S")):
            value = env_float(prefix + var)
            if value is not None:
                values[field] = value
        raw = os.environ.get(prefix + "PRE_PING")
        if raw is not None:
            if raw.lower() not in {"1", "0", "true", "false", "yes", "no"}:
                raise ValueError(
                    f"environment variable {prefix}PRE_PING must be a boolean, got {raw!r}"
                )
            values["pre_ping"] = raw.lower() in {"1", "true", "yes"}
        return replace(cls(), **(values | explicit))

    def sqlalchemy(self) -> dict[str, Any]:
        """Keyword arguments for ``create_engine`` / ``create_async_engine``."""
        return {
            "pool_size": self.size,
            "max_overflow": self.max_overflow,
            "pool_recycle": int(self.recycle_s),
            "pool_timeout": self.timeout_s,
            "pool_pre_ping": self.pre_ping,
        }

    def asyncpg(self) -> dict[str, Any]:
        """Keyword arguments for ``asyncpg.create_pool`` (pre-ping is ``alive=`` on the
        registry: asyncpg has no per-checkout ping)."""
        return {
            "min_size": min(self.size, 2),
            "max_size": self.size + self.max_overflow,
            "max_inactive_connection_lifetime": self.recycle_s,
            "timeout": self.timeout_s,
        }

    def httpx(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Limits``."""
        return {
            "max_connections": self.size + self.max_overflow,
            "max_keepalive_connections": self.size,
            "keepalive_expiry": min(self.recycle_s, 60.0),
        }
