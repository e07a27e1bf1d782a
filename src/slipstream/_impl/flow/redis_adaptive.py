"""``AdaptiveRate`` with its state in Redis, learnt and shared by every process on one key.

The rate, the bucket (GCRA), the pause, the cut count (epoch) and the slow-start flag live in
one Redis hash, read and written by one Lua script on Redis's own clock (``TIME``), so the
rule is the same as the in-process ``AdaptiveRate`` (see ``flow.adaptive``) and all processes
move one rate. Each call of the script first applies the feedback this process gathered since
its last call, then tries to grant: successes ride along with the next ``acquire`` (no extra
round trip per item), while a throttle is also sent at once by a background flush, so other
processes pause and slow down without waiting for this one's next call. The hash expires after
an hour without use (a rate learnt then is stale). Needs ``redis.asyncio`` or a client with a
compatible ``register_script``.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import Any, final

from ..core.checks import check_number
from ..core.clock import now as _now
from ..core.settings import testing_state as _testing
from .throttle import check_options, throttle_of

__all__ = ["RedisAdaptiveRate"]

# KEYS[1]: the hash. ARGV: initial, min, max, increase, decrease, burst, slow start (1/0),
# max pause, weight (0: feedback only), success units, their epoch, throttle epoch (-1: none,
# -2: unknown, counts as fresh), throttle delay. Returns {wait, epoch, rate} as strings (Lua
# numbers would be cut to integers on the way out).
_STEP = """
local a = {}
for i = 1, 13 do a[i] = tonumber(ARGV[i]) end
local lo, hi, inc, dec, cap, maxpause = a[2], a[3], a[4], a[5], a[6], a[8]
local weight, s_units, s_epoch, t_epoch, t_delay = a[9], a[10], a[11], a[12], a[13]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local h = redis.call('HMGET', KEYS[1], 'rate', 'tat', 'paused', 'epoch', 'slow', 'limited')
local rate = tonumber(h[1]) or a[1]
local tat = tonumber(h[2]) or 0
local paused = tonumber(h[3]) or 0
local epoch = tonumber(h[4]) or 0
local slow = tonumber(h[5]) or a[7]
local limited = tonumber(h[6]) or 0
local function set_rate(new)
  if tat > now then tat = now + (tat - now) * rate / new end
  rate = new
end
if s_units > 0 and s_epoch == epoch and now >= paused
   and now - limited <= math.max(1, 2 / rate) then
  local step = s_units
  if slow == 0 then step = inc * s_units / rate end
  set_rate(math.min(hi, rate + step))
end
if t_epoch ~= -1 then
  if t_delay > 0 then paused = math.max(paused, now + math.min(t_delay, maxpause)) end
  if t_epoch == epoch or t_epoch == -2 then
    epoch = epoch + 1
    slow = 0
    set_rate(math.max(lo, rate * dec))
  end
end
local wait = 0
if weight > 0 then
  local ready = math.max(tat - (cap - weight) / rate, paused)
  if now < ready then
    wait = ready - now
    limited = now
  else
    if tat > now then limited = now end
    tat = math.max(tat, now) + weight / rate
  end
end
redis.call('HSET', KEYS[1], 'rate', string.format('%.17g', rate),
  'tat', string.format('%.6f', tat), 'paused', string.format('%.6f', paused),
  'epoch', epoch, 'slow', slow, 'limited', string.format('%.6f', limited))
redis.call('PEXPIRE', KEYS[1], 3600000)
return {tostring(wait), tostring(epoch), string.format('%.17g', rate)}
"""


@final
class RedisAdaptiveRate:
    """An ``AdaptiveRate`` whose rate and bucket are shared through Redis by every process
    that uses ``key``. Same arguments and rule as ``AdaptiveRate``.

    Example::

        client = redis.asyncio.Redis(host="127.0.0.1")
        limiter = ss.RedisAdaptiveRate(client, "api:acme", initial_per_s=10)
        results = await ss.map(fetch, urls, rate=limiter, retry=ss.Retry(attempts=6))
    """

    __slots__ = (
        "_args",
        "_client",
        "_flushes",
        "_granted",
        "_lock",
        "_lock_loop",
        "_rate",
        "_script",
        "_succ",
        "_throttle",
        "key",
    )

    def __init__(
        self,
        client: Any,
        key: str,
        *,
        initial_per_s: float = 10.0,
        min_per_s: float = 0.5,
        max_per_s: float = 10_000.0,
        increase_per_s: float = 1.0,
        decrease: float = 0.7,
        burst: float = 1.0,
        max_retry_after_s: float = 60.0,
        slow_start: bool = True,
    ) -> None:
        if not hasattr(client, "register_script"):
            raise TypeError(
                f"'client' must be a redis.asyncio client, got {type(client).__name__}"
                "\nHINT: redis.asyncio.Redis(host='127.0.0.1')"
            )
        if not isinstance(key, str) or not key:
            raise ValueError(f"'key' must be a non-empty string, got {key!r}")
        o = check_options(
            initial_per_s,
            min_per_s,
            max_per_s,
            increase_per_s,
            decrease,
            burst,
            max_retry_after_s,
            slow_start,
        )
        first = o.initial_per_s
        self._args = [
            repr(v)
            for v in (
                first,
                o.min_per_s,
                o.max_per_s,
                o.increase_per_s,
                o.decrease,
                o.burst,
                float(o.slow_start),
                o.max_retry_after_s,
            )
        ]
        self._client = client
        self.key = key
        self._script = client.register_script(_STEP)
        self._rate = first
        self._granted: ContextVar[tuple[int, float] | None] = ContextVar("granted", default=None)
        self._succ: tuple[int, float] = (0, 0.0)  # (epoch, units) of successes not yet sent
        self._throttle: tuple[int, float] | None = None  # (epoch or -2, delay) not yet sent
        self._flushes: set[asyncio.Task[None]] = set()
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    @property
    def rate_per_s(self) -> float:
        """The shared rate as of this process's last exchange with Redis."""
        return self._rate

    async def _step(self, weight: float) -> tuple[float, int]:
        """Send the pending feedback and try to take ``weight`` units (0: feedback only)."""
        (s_epoch, s_units), throttle = self._succ, self._throttle
        self._succ, self._throttle = (s_epoch, 0.0), None
        t_epoch, t_delay = throttle if throttle is not None else (-1, 0.0)
        args = [*self._args, repr(float(weight)), repr(s_units), str(s_epoch)]
        reply = await self._script(keys=[self.key], args=[*args, str(t_epoch), repr(t_delay)])
        wait, epoch, rate = (float(v.decode() if isinstance(v, bytes) else v) for v in reply)
        self._rate = rate
        return wait, int(epoch)

    async def acquire(self, weight: float = 1.0) -> float:
        """Wait until the shared bucket grants ``weight`` units; return the seconds waited.

        Raises:
            ValueError: ``weight`` is not positive or exceeds the burst.
        """
        check_number("weight", weight, above=0, maximum=float(self._args[5]))
        if _testing.enabled:
            return 0.0
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        start = _now()
        async with self._lock:  # FIFO within the process; only the head asks Redis
            while True:
                wait, epoch = await self._step(weight)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
        self._granted.set((epoch, float(weight)))
        return _now() - start

    def feedback(self, error: BaseException | None) -> None:
        """Report how the call after this task's last ``acquire`` went (None: a success).
        Successes go to Redis with the next ``acquire``; a throttle also at once."""
        granted = self._granted.get()
        self._granted.set(None)
        if error is None:
            if granted is not None:
                epoch, units = self._succ
                self._succ = (granted[0], units + granted[1] if epoch == granted[0] else granted[1])
            return
        throttled, delay = throttle_of(error)
        if not throttled:
            return
        epoch = granted[0] if granted is not None else -2
        old = self._throttle
        if old is not None:
            epoch = max(epoch, old[0]) if -2 not in (epoch, old[0]) else -2
        self._throttle = (epoch, max(delay or 0.0, old[1] if old else 0.0))
        try:
            task = asyncio.get_running_loop().create_task(self._flush_quietly())
        except RuntimeError:  # no loop: the next acquire sends it
            return
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def flush(self) -> None:
        """Send the feedback gathered so far to Redis now."""
        if self._throttle is not None or self._succ[1] > 0:
            await self._step(0.0)

    async def _flush_quietly(self) -> None:
        try:
            await self.flush()
        except Exception:  # Redis unreachable: the next acquire reports the error, and retries
            return

    async def reset(self) -> None:
        """Forget the shared state: the next call starts from ``initial_per_s`` again."""
        await self._client.delete(self.key)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, Exception):
            self.feedback(exc)

    def __repr__(self) -> str:
        return f"<RedisAdaptiveRate key={self.key!r} rate_per_s={self._rate:.3g}>"
