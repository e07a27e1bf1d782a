"""Registry: one client per (name, settings, loop), single flight, health, order of closing."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import slipstream as ss

Run = Callable[[Coroutine[Any, Any, Any]], Any]


@dataclasses.dataclass(frozen=True)
class StorageSettings:
    endpoint: str
    bucket: str = "assets"


class Client:
    """A client that remembers how it was closed, and into which shared log."""

    def __init__(self, settings: Any = None, log: list[str] | None = None) -> None:
        self.settings = settings
        self.closed = False
        self.log = log if log is not None else []

    async def aclose(self) -> None:
        self.closed = True
        self.log.append(f"aclose {self.settings}")


class SyncClosing:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def close(self) -> None:
        self.log.append("close")


class ContextOnly:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def __aenter__(self) -> ContextOnly:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.log.append("__aexit__")


class SlowFactory:
    """Counts calls; each creation takes `delay_s` (a TLS handshake, an auth round trip)."""

    def __init__(self, delay_s: float = 0.2, fail_first: int = 0) -> None:
        self.calls = 0
        self.delay_s = delay_s
        self.fail_first = fail_first

    async def __call__(self, settings: Any = None) -> Client:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        if self.calls <= self.fail_first:
            raise ConnectionRefusedError("minio is not up yet")
        return Client(settings)


class TestKeys:
    def test_equal_settings_share_rebuilt_or_not(self, vrun: Run) -> None:
        """Equal settings rebuilt as new objects give the same client; different ones do not."""
        factory = SlowFactory()

        async def main() -> tuple[Any, Any, Any]:
            registry = ss.Registry()
            a = await registry.get("storage", factory, StorageSettings("http://minio:9000"))
            b = await registry.get("storage", factory, StorageSettings("http://minio:9000"))
            c = await registry.get("storage", factory, StorageSettings("http://other:9000"))
            return a, b, c

        a, b, c = vrun(main())
        assert a is b
        assert a is not c
        assert 2 == factory.calls

    @pytest.mark.parametrize(
        "settings",
        [{"url": "x", "timeout": 3}, "postgresql://db/test", ("a", 1), None],
    )
    def test_settings_kinds(self, vrun: Run, settings: Any) -> None:
        """Mappings, strings, tuples and no settings all key the registry."""
        factory = SlowFactory(0)

        async def main() -> bool:
            registry = ss.Registry()
            first = await registry.get("x", factory, settings)
            copy = dict(settings) if isinstance(settings, dict) else settings
            return first is await registry.get("x", factory, copy)

        assert vrun(main())
        assert 1 == factory.calls

    def test_pydantic_settings(self, vrun: Run) -> None:
        """Pydantic models are fingerprinted by their fields."""
        pydantic = pytest.importorskip("pydantic")

        class LLMSettings(pydantic.BaseModel):  # type: ignore[name-defined,misc]
            model: str
            temperature: float = 0.0

        factory = SlowFactory(0)

        async def main() -> list[Any]:
            registry = ss.Registry()
            return [
                await registry.get("llm", factory, LLMSettings(model="m1")),
                await registry.get("llm", factory, LLMSettings(model="m1")),
                await registry.get("llm", factory, LLMSettings(model="m1", temperature=0.5)),
            ]

        a, b, c = vrun(main())
        assert a is b
        assert a is not c

    def test_unfingerprintable_settings(self, vrun: Run) -> None:
        """Settings with only an address for text raise TypeError naming 'settings'."""

        async def main() -> None:
            await ss.Registry().get("x", SlowFactory(0), object())

        with pytest.raises(TypeError, match="'settings'"):
            vrun(main())


class TestSingleFlight:
    def test_thousand_concurrent_first_calls_one_creation(self, vrun: Run) -> None:
        """1,000 concurrent first calls make exactly one factory call and share its client."""
        factory = SlowFactory()

        async def main() -> set[int]:
            registry = ss.Registry()
            clients = await asyncio.gather(
                *(registry.get("storage", factory, "s") for _ in range(1000))
            )
            return {id(c) for c in clients}

        assert 1 == len(vrun(main()))
        assert 1 == factory.calls

    def test_failure_reaches_every_waiter_and_next_call_retries(self, vrun: Run) -> None:
        """If the factory fails, every waiter gets that error; the next call creates anew."""
        factory = SlowFactory(fail_first=1)

        async def main() -> tuple[list[Any], Any]:
            registry = ss.Registry()
            first = await asyncio.gather(
                *(registry.get("storage", factory, "s") for _ in range(50)),
                return_exceptions=True,
            )
            return first, await registry.get("storage", factory, "s")

        first, client = vrun(main())
        assert all(isinstance(r, ConnectionRefusedError) for r in first)
        assert len({id(r) for r in first}) == 1  # the same error object for all
        assert isinstance(client, Client)
        assert 2 == factory.calls

    def test_cancelled_waiter_does_not_cancel_the_creation(self, vrun: Run) -> None:
        """The first caller is cancelled mid-creation; the others still get the client."""
        factory = SlowFactory()

        async def main() -> list[Any]:
            registry = ss.Registry()
            first = asyncio.create_task(registry.get("storage", factory, "s"))
            others = [asyncio.create_task(registry.get("storage", factory, "s")) for _ in range(5)]
            await asyncio.sleep(0.05)
            first.cancel()
            return await asyncio.gather(*others)

        clients = vrun(main())
        assert all(isinstance(c, Client) for c in clients)
        assert 1 == factory.calls

    def test_factory_returning_none(self, vrun: Run) -> None:
        """A factory that returns None is an error, and nothing is registered."""

        async def main() -> dict[str, Any]:
            registry = ss.Registry()
            with pytest.raises(TypeError, match="returned None"):
                await registry.get("x", lambda: None)
            return registry.status()

        assert 0 == vrun(main())["cached_providers"]


class TestLoopsAndProcesses:
    def test_another_loop_gets_its_own_client(self) -> None:
        """A client made on one event loop is not handed to another loop."""
        registry = ss.Registry()
        factory = SlowFactory(0)

        async def get() -> Any:
            return await registry.get("http", factory, "s")

        a = asyncio.run(get())
        b = asyncio.run(get())
        assert a is not b
        assert 2 == factory.calls

    def test_fork_child_does_not_reuse_parent_clients(self) -> None:
        """After os.fork() the child creates its own client."""
        if not hasattr(os, "fork"):
            pytest.skip("needs os.fork")
        registry = ss.Registry()
        parent_client = registry.get_sync("db", lambda: object.__new__(SyncClosing))
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            try:
                child_client = registry.get_sync("db", lambda: object.__new__(SyncClosing))
                os.write(write, b"same" if child_client is parent_client else b"fresh")
            finally:
                os._exit(0)
        os.close(write)
        answer = os.read(read, 10)
        os.waitpid(pid, 0)
        os.close(read)
        assert b"fresh" == answer
        assert parent_client is registry.get_sync("db", lambda: object.__new__(SyncClosing))


class TestHealthAndAge:
    def test_unhealthy_client_is_closed_and_recreated(self, vrun: Run) -> None:
        """A client failing alive= is closed and a new one is made."""
        factory = SlowFactory(0)

        async def main() -> tuple[Client, Client]:
            registry = ss.Registry()
            a = await registry.get("db", factory, "s")
            b = await registry.get("db", factory, "s", alive=lambda c: False)
            return a, b

        a, b = vrun(main())
        assert a is not b
        assert a.closed
        assert not b.closed

    def test_async_health_check_and_raising_check(self, vrun: Run) -> None:
        """An async check that passes keeps the client; one that raises replaces it."""
        factory = SlowFactory(0)

        async def ping(client: Client) -> bool:
            return True

        def broken(client: Client) -> bool:
            raise ConnectionError("ping failed")

        async def main() -> list[Client]:
            registry = ss.Registry()
            a = await registry.get("db", factory, "s")
            b = await registry.get("db", factory, "s", alive=ping)
            c = await registry.get("db", factory, "s", alive=broken)
            return [a, b, c]

        a, b, c = vrun(main())
        assert a is b
        assert c is not a

    def test_max_age_and_idle(self, vrun: Run) -> None:
        """A client older than max_age_s, or idle longer than max_idle_s, is recreated."""
        factory = SlowFactory(0)

        async def main() -> list[Client]:
            registry = ss.Registry()
            a = await registry.get("db", factory, "s", max_age_s=60)
            await asyncio.sleep(30)
            b = await registry.get("db", factory, "s", max_age_s=60)
            await asyncio.sleep(31)
            c = await registry.get("db", factory, "s", max_age_s=60)
            await asyncio.sleep(5)
            d = await registry.get("db", factory, "s", max_idle_s=10)
            await asyncio.sleep(11)
            e = await registry.get("db", factory, "s", max_idle_s=10)
            assert (3, 2) == (
                registry.statistics()["db"].creations,
                registry.statistics()["db"].closes,
            )
            return [a, b, c, d, e]

        a, b, c, d, e = vrun(main())
        assert a is b
        assert c is not a
        assert a.closed
        assert d is c
        assert e is not d


class TestClosing:
    def test_closes_in_reverse_order_each_its_own_way(self, vrun: Run) -> None:
        """aclose() closes owned clients newest first via aclose/close/__aexit__; borrowed
        objects are left open; afterwards get() raises RegistryClosed."""
        log: list[str] = []
        borrowed = Client("borrowed", log)

        async def main() -> None:
            async with ss.Registry() as registry:
                await registry.get("first", lambda s: Client(s, log), "one")
                await registry.get("second", lambda: SyncClosing(log))
                await registry.get("third", lambda: ContextOnly(log))
                registry.register("shared", borrowed)
            with pytest.raises(ss.RegistryClosed, match="'later'"):
                await registry.get("later", lambda: Client())
            assert isinstance(ss.RegistryClosed("r", "n"), RuntimeError)

        vrun(main())
        assert ["__aexit__", "close", "aclose one"] == log
        assert not borrowed.closed

    def test_close_errors_are_all_reported(self, vrun: Run) -> None:
        """Every client is closed even if some fail; the failures come back as a group."""
        log: list[str] = []

        class Bad:
            async def aclose(self) -> None:
                raise OSError("socket already gone")

        async def main() -> None:
            registry = ss.Registry()
            await registry.get("good", lambda: Client("good", log))
            await registry.get("bad", Bad)
            await registry.aclose()

        with pytest.raises(ExceptionGroup) as info:
            vrun(main())
        assert 1 == len(info.value.exceptions)
        assert ["aclose good"] == log


class TestReporting:
    def test_statistics_and_status(self, vrun: Run, caplog: pytest.LogCaptureFixture) -> None:
        """statistics() counts creations, hits and creation time; status() lists the clients;
        creation logs at info, reuse at debug."""
        caplog.set_level("DEBUG", logger="slipstream.registry")
        factory = SlowFactory(0.2)

        async def main() -> tuple[dict[str, ss.ProviderStatistics], dict[str, Any]]:
            registry = ss.Registry("run")
            for _ in range(3):
                await registry.get("storage", factory, StorageSettings("http://minio"))
            assert "clients=1" in repr(registry)
            return registry.statistics(), registry.status()

        stats, status = vrun(main())
        assert (1, 2) == (stats["storage"].creations, stats["storage"].hits)
        assert 0.2 == pytest.approx(stats["storage"].creation_s, abs=0.05)
        assert 1 == status["cached_providers"]
        assert "minio" in status["providers"][0]["settings"]
        levels = [(r.levelname, r.getMessage().split()[0]) for r in caplog.records]
        assert ("INFO", "created") in levels
        assert ("DEBUG", "reusing") in levels

    def test_sync_get_single_flight_across_threads(self) -> None:
        """get_sync from 20 threads at once makes one client."""
        import threading
        import time

        calls = []

        def factory() -> object:
            calls.append(1)
            time.sleep(0.05)
            return object.__new__(SyncClosing)

        registry = ss.Registry()
        got: list[Any] = []
        threads = [
            threading.Thread(target=lambda: got.append(registry.get_sync("db", factory)))
            for _ in range(20)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert 1 == len(calls)
        assert 1 == len({id(g) for g in got})

    def test_default_registry_is_process_wide(self) -> None:
        """default_registry() returns one registry per process."""
        assert ss.default_registry() is ss.default_registry()
        assert sys.modules["slipstream"].default_registry is ss.default_registry


class TestClosingDuringCreation:
    def test_a_client_made_while_closing_is_closed(self, vrun: Run) -> None:
        """aclose() during a factory call: the get raises RegistryClosed, and the client the
        factory made anyway is closed by the time aclose() returns."""
        registry = ss.Registry()
        release = asyncio.Event()
        made: list[Client] = []

        async def factory() -> Client:
            # a handshake that finishes anyway (shielded inside the driver)
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()
            made.append(Client("late"))
            return made[-1]

        async def main() -> bool:
            get = asyncio.create_task(registry.get("storage", factory))
            await asyncio.sleep(0)  # the factory is running
            closing = asyncio.create_task(registry.aclose())
            await asyncio.sleep(0)
            release.set()
            await closing
            closed_when_aclose_returned = made[0].closed
            with pytest.raises(ss.RegistryClosed):
                await get
            return closed_when_aclose_returned

        assert vrun(main())

    def test_waiters_of_a_cancelled_creation_get_registry_closed(self, vrun: Run) -> None:
        """A creation aclose() cancels fails its waiters with RegistryClosed, not with a
        CancelledError they never asked for."""
        registry = ss.Registry()

        async def main() -> list[type[BaseException]]:
            gets = [
                asyncio.create_task(registry.get("llm", SlowFactory(delay_s=10))) for _ in range(3)
            ]
            await asyncio.sleep(0)
            await registry.aclose()
            results = await asyncio.gather(*gets, return_exceptions=True)
            return [type(r) for r in results]

        assert [ss.RegistryClosed] * 3 == vrun(main())

    def test_sync_factory_racing_aclose(self) -> None:
        """get_sync whose factory returns after aclose(): the client is closed, not leaked."""
        registry = ss.Registry()
        log: list[str] = []

        def factory() -> SyncClosing:
            asyncio.run(registry.aclose())  # closed while the factory runs
            return SyncClosing(log)

        with pytest.raises(ss.RegistryClosed):
            registry.get_sync("db", factory)
        assert ["close"] == log
