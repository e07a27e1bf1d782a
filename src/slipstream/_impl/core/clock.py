"""The one clock every primitive that measures or waits reads.

``now()`` is the running loop's clock inside a loop and ``time.monotonic()`` outside one, so a
virtual-time loop (``slipstream.testing.run(virtual_clock=True)``) drives every primitive and a
test of an hour of backoff takes milliseconds. ``clock`` is the loop-free clock of hot paths
(the cache's expiry checks), a module global so the virtual loop can take it over. CPU timing
of a single call (how long a flush took) may use ``time.perf_counter`` directly: it measures
work, not waiting, and a virtual clock would report zero for it.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["clock", "now"]

# asyncio's own non-raising lookup (public as asyncio._get_running_loop since 3.7): raising
# and catching RuntimeError outside a loop cost ~0.8 us per call on a cache hit path.
_running_loop = asyncio._get_running_loop
_monotonic = time.monotonic


def now() -> float:
    """Monotonic seconds: the running loop's clock inside a loop, else ``time.monotonic()``.

    Using the loop's clock lets a virtual-time loop (``slipstream.testing``) drive every
    primitive; the stock loop's clock *is* ``time.monotonic``, so the two never disagree.
    """
    loop = _running_loop()
    return _monotonic() if loop is None else loop.time()


# The clock of hot paths that need no event loop (the cache's expiry checks): a module global,
# read as ``_clock.clock()``, so ``slipstream.testing.run(virtual_clock=True)`` can point it at
# the virtual loop's time. ``time.monotonic`` costs ~50 ns; ``now()`` ~400 ns.
clock = time.monotonic
