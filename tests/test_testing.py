"""slipstream.testing: the virtual clock, the fake clock and the test-mode switch."""

from __future__ import annotations

import asyncio
import time

import pytest

from slipstream import testing
from slipstream._impl.core.settings import testing_state


class TestVirtualClock:
    def test_an_hour_of_sleep_is_instant_and_exact(self) -> None:
        """Sleeping 3600 s on the virtual clock takes no real time and lands exactly."""

        async def main() -> float:
            await asyncio.sleep(3600)
            return asyncio.get_running_loop().time()

        t0 = time.monotonic()
        assert 3600.0 == testing.run(main(), virtual_clock=True)
        assert time.monotonic() - t0 < 1.0

    def test_real_io_still_works(self) -> None:
        """Sockets are served while virtual time runs."""

        async def main() -> bytes:
            async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                w.write(await r.readexactly(4))
                await w.drain()
                w.close()

            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"ping")
            data = await reader.readexactly(4)
            writer.close()
            server.close()
            await server.wait_closed()
            return data

        assert b"ping" == testing.run(main(), virtual_clock=True)


class TestSwitches:
    def test_no_waits_restores(self) -> None:
        """no_waits() turns test mode on inside the block and restores it after."""
        with testing.no_waits(attempts=2):
            assert (True, 2) == (testing_state.enabled, testing_state.attempts)
        assert not testing_state.enabled

    def test_bad_attempts(self) -> None:
        """attempts below 1 is rejected."""
        with pytest.raises(ValueError, match="'attempts'"):
            testing.set_testing(True, attempts=0)

    def test_fake_clock(self) -> None:
        """FakeClock moves only when advanced, never backwards."""
        clock = testing.FakeClock(10)
        clock.advance(2.5)
        assert 12.5 == clock()
        with pytest.raises(ValueError, match="'seconds'"):
            clock.advance(-1)
