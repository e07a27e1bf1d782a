"""A rate limiter whose budget lives in Redis, shared by every process and machine that uses
the same key.

The bucket is the same GCRA token bucket as ``RateLimiter`` (one number per key, the time at
which the bucket is full again), updated atomically by a Lua script that reads Redis's own clock
(``TIME``), so the hosts' clocks never need to agree. Within one process, waiters queue FIFO
behind a local lock, so only the head polls Redis.

Guarantee: in any window of T seconds of Redis time, at most ``floor(T * rate) + burst`` units
are granted across all clients. A start happens one network hop after its grant, so on the
clients' clocks a window can see a grant more only when hop latencies differ within it.
Needs the ``redis`` extra (``redis.asyncio``) or any client with a compatible
``register_script``.
"""

from __future__ import annotations

import asyncio
from typing import Any, final

from ..core.clock import now as _now
from ..core.settings import testing_state as _testing
from .rate import Rate, check_weight

__all__ = ["RedisRateLimiter"]

# KEYS[1]: the bucket. ARGV: seconds per unit, burst (units), weight (units).
# Returns "0" when granted, else the seconds to wait, as a string (Lua numbers would be cut to
# integers on the way out).
_GCRA = """
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local weight = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat - (capacity - weight) * interval
if now < allow_at then
  return tostring(allow_at - now)
end
local new_tat = tat + weight * interval
local ttl_ms = math.ceil((new_tat - now) * 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX', ttl_ms)
return '0'
"""


@final
class RedisRateLimiter:
    """A ``Rate`` enforced across processes through Redis.

    Example::

        client = redis.asyncio.Redis(host="127.0.0.1")
        limiter = ss.RedisRateLimiter(client, "llm:openai", ss.Rate(per_minute=500, burst=5))
        results = await ss.map(classify, docs, rate=limiter)

    Args:
        client: a ``redis.asyncio.Redis`` (or compatible) client.
        key: the Redis key of the shared bucket; every process that uses it shares the budget.
        rate: the rate and burst.
    """

    __slots__ = (
        "_acquired",
        "_client",
        "_lock",
        "_lock_loop",
        "_rate",
        "_script",
        "_waited_s",
        "key",
    )

    def __init__(self, client: Any, key: str, rate: Rate) -> None:
        if not hasattr(client, "register_script"):
            raise TypeError(
                f"'client' must be a redis.asyncio client, got {type(client).__name__}"
                "\nHINT: redis.asyncio.Redis(host='127.0.0.1')"
            )
        if not isinstance(key, str) or not key:
            raise ValueError(f"'key' must be a non-empty string, got {key!r}")
        if not isinstance(rate, Rate):
            raise TypeError(f"'rate' must be a slipstream.Rate, got {type(rate).__name__}")
        self._client = client
        self.key = key
        self._rate = rate
        self._script = client.register_script(_GCRA)
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._acquired = 0
        self._waited_s = 0.0

    @property
    def rate(self) -> Rate:
        return self._rate

    async def acquire(self, weight: float = 1.0) -> float:
        """Wait until Redis grants ``weight`` units; return the seconds waited."""
        check_weight(weight, self._rate)
        if _testing.enabled:
            return 0.0
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            # one lock per loop: an asyncio.Lock binds to the first loop that waits on it, so
            # a module-level limiter would raise on the next asyncio.run (or, if that loop
            # closed with the lock held, wait forever)
            self._lock, self._lock_loop = asyncio.Lock(), loop
        start = _now()
        args = [repr(1.0 / self._rate.per_second), repr(self._rate.burst), repr(float(weight))]
        async with self._lock:  # FIFO within the process; only the head polls Redis
            while True:
                reply = await self._script(keys=[self.key], args=args)
                wait = float(reply.decode() if isinstance(reply, bytes) else reply)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
        self._acquired += 1
        waited = _now() - start
        self._waited_s += waited
        return waited

    async def reset(self) -> None:
        """Forget the shared bucket (it starts full again)."""
        await self._client.delete(self.key)

    def __repr__(self) -> str:
        return f"<RedisRateLimiter key={self.key!r} {self._rate!r} acquired={self._acquired}>"
