"""Monitor and TimingMiddleware: bounded per-name stats, slow log, exports, real HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import slipstream as ss

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class TestMonitor:
    def test_measure_block_decorator_and_errors(self, vrun: Run) -> None:
        """measure() times with-blocks, async-with blocks and decorated calls (the async ones on
        the loop's clock, to the exact virtual second), and counts the ones that raised."""
        m = ss.Monitor()

        @m.measure("job")
        async def job(fail: bool) -> None:
            await asyncio.sleep(0.01)
            if fail:
                raise ValueError("job failed")

        async def main() -> None:
            async with m.measure("block"):
                await asyncio.sleep(0.02)
            await job(False)
            with pytest.raises(ValueError, match="job failed"):
                await job(True)

        vrun(main())
        with m.measure("sync"):
            pass
        report = m.report()
        assert (2, 1) == (report["job"]["count"], report["job"]["errors"])
        assert 0.02 == report["block"]["p50_s"] == report["block"]["max_s"]
        assert 0.02 == pytest.approx(report["job"]["total_s"], abs=1e-12)
        # first and last job recorded at virtual 0.03 s and 0.04 s: two in 10 ms
        assert 200 == pytest.approx(report["job"]["per_s"])
        assert 1 == report["sync"]["count"]

    def test_quantiles_from_a_sketch_not_a_list(self) -> None:
        """100,000 records keep bounded memory and give p50/p99 within 1%."""
        m = ss.Monitor()
        for i in range(1, 100_001):
            m.record("op", i / 100_000)
        row = m.report()["op"]
        assert 0.5 == pytest.approx(row["p50_s"], rel=0.011)
        assert 0.99 == pytest.approx(row["p99_s"], rel=0.011)
        assert len(m._stats["op"].histogram) < 1000

    def test_name_cap_with_one_warning(self, caplog: pytest.LogCaptureFixture) -> None:
        """Beyond max_names, names share the overflow bucket; one warning is logged."""
        caplog.set_level(logging.WARNING, logger="slipstream.monitor")
        m = ss.Monitor(max_names=100)
        for i in range(100_000):
            m.record(f"request-{i}", 0.001)
        report = m.report()
        assert 101 == len(report) - 2  # 100 names + overflow, besides counters and gauges
        assert 100_000 - 100 == report["__overflow__"]["count"]
        assert 1 == len([r for r in caplog.records if "distinct names" in r.getMessage()])

    def test_slow_log_counters_gauges_hooks(self, caplog: pytest.LogCaptureFixture) -> None:
        """set_slow logs slow operations; counters add; gauges set; hooks see everything."""
        caplog.set_level(logging.WARNING, logger="slipstream.monitor")
        m = ss.Monitor()
        seen: list[tuple[str, float, bool]] = []
        m.add_hook(lambda n, s, e: seen.append((n, s, e)))
        m.set_slow("query", 0.5)
        m.record("query", 0.1)
        m.record("query", 0.9)
        m.count("rows", 10)
        m.count("rows", 5)
        m.gauge("queue", 3)
        assert 1 == caplog.text.count("slow query")
        assert {"rows": 15} == m.report()["counters"]
        assert {"queue": 3} == m.report()["gauges"]
        assert [("query", 0.1, False), ("query", 0.9, False)] == seen
        with pytest.raises(ValueError, match="'slow_s'"):
            m.set_slow("x", -1)
        with pytest.raises(ValueError, match="'max_names'"):
            ss.Monitor(max_names=0)

    def test_rich_table_and_prometheus(self) -> None:
        """render() gives a rich table; the Prometheus collector exposes the quantiles."""
        prometheus = pytest.importorskip("prometheus_client")
        m = ss.Monitor()
        for v in (0.1, 0.2, 0.3):
            m.record("classify", v)
        from rich.console import Console

        console = Console(record=True, width=120)
        console.print(m.render())
        assert "classify" in console.export_text()
        registry = prometheus.CollectorRegistry()
        registry.register(m.prometheus_collector())
        text = prometheus.generate_latest(registry).decode()
        assert 'slipstream_operation_seconds_count{name="classify"} 3.0' in text
        assert 'slipstream_operation_seconds_quantile{name="classify",quantile="0.5"}' in text


class TestMiddleware:
    def test_process_time_on_the_virtual_clock(self, vrun: Run) -> None:
        """A request that waits 250 ms (virtual) before it responds gets X-Process-Time 0.250000
        and is recorded as 250 ms under its method and path."""
        m = ss.Monitor()
        sent: list[dict[str, Any]] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await asyncio.sleep(0.25)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        async def receive() -> dict[str, Any]:
            return {"type": "http.request"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        middleware = ss.TimingMiddleware(app, monitor=m)
        vrun(middleware({"type": "http", "method": "GET", "path": "/slow"}, receive, send))
        assert [(b"x-process-time", b"0.250000")] == sent[0]["headers"]
        assert 0.25 == m.report()["GET /slow"]["max_s"]

    def test_over_real_http(self, arun: Run) -> None:
        """Through uvicorn on 127.0.0.1: X-Process-Time on every response, per-route
        latency under the route template, Cache-Control on static assets."""
        httpx = pytest.importorskip("httpx")
        uvicorn = pytest.importorskip("uvicorn")
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        m = ss.Monitor()

        async def item(request: Any) -> PlainTextResponse:
            return PlainTextResponse(request.path_params["id"])

        async def asset(request: Any) -> PlainTextResponse:
            return PlainTextResponse("body{}")

        app = Starlette(
            routes=[Route("/items/{id}", item), Route("/static/site.css", asset)],
            middleware=[Middleware(ss.TimingMiddleware, monitor=m)],
        )

        async def main() -> list[Any]:
            config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
            server = uvicorn.Server(config)
            serving = asyncio.create_task(server.serve())
            while not server.started:  # noqa: ASYNC110  # uvicorn offers no event for this
                await asyncio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                responses = [await client.get(f"/items/{i}") for i in range(3)]
                responses.append(await client.get("/static/site.css"))
            server.should_exit = True
            await serving
            return responses

        responses = arun(main())
        assert all(float(r.headers["x-process-time"]) >= 0 for r in responses)
        assert "public, max-age=86400" == responses[-1].headers["cache-control"]
        assert "cache-control" not in responses[0].headers
        assert 3 == m.report()["GET /items/{id}"]["count"]


class TestRecordMany:
    def test_each_value_counts_with_its_error_flag_and_reaches_the_hooks(self) -> None:
        """``record_many`` is ``record`` per value: counts, errors, the hook per value."""
        one, many = ss.Monitor(), ss.Monitor()
        seen: list[tuple[str, float, bool]] = []
        many.add_hook(lambda n, s, e: seen.append((n, s, e)))
        values, errors = [0.1, 0.2, 0.3], [False, True, False]
        for v, e in zip(values, errors, strict=True):
            one.record("stage", v, e)
        many.record_many("stage", values, errors)
        a, b = one.report()["stage"], many.report()["stage"]
        assert (b["count"], b["errors"], b["p50_s"]) == (a["count"], a["errors"], a["p50_s"])
        assert seen == [("stage", 0.1, False), ("stage", 0.2, True), ("stage", 0.3, False)]

    def test_lists_of_different_lengths_are_refused_by_name(self) -> None:
        """One error flag per value, or a ValueError naming ``errors``."""
        with pytest.raises(ValueError, match="'errors' must have one flag per value"):
            ss.Monitor().record_many("x", [0.1, 0.2], [False])


class TestMerge:
    def test_a_merged_batch_counts_as_its_operations(self) -> None:
        """``merge`` of a histogram of 3 calls (1 failed) reads as 3 ``record`` calls."""
        one, merged = ss.Monitor(), ss.Monitor()
        batch = ss.Histogram()
        for v, e in ((0.1, False), (0.2, True), (0.3, False)):
            one.record("stage", v, e)
            batch.add(v)
        merged.merge("stage", batch, errors=1)
        a, b = one.report()["stage"], merged.report()["stage"]
        assert (b["count"], b["errors"], b["p95_s"]) == (a["count"], a["errors"], a["p95_s"])

    def test_hooks_and_slow_thresholds_want_each_operation(self) -> None:
        """With a hook or a slow threshold, callers must record one by one."""
        m = ss.Monitor()
        assert not m.wants_each("stage")
        m.set_slow("stage", 1.0)
        assert m.wants_each("stage")
        assert not m.wants_each("other")
        m.add_hook(lambda n, s, e: None)
        assert m.wants_each("other")

    def test_bad_arguments_are_refused_by_name(self) -> None:
        """A histogram that is not one, or negative errors, name the parameter."""
        with pytest.raises(TypeError, match="'histogram' must be a Histogram"):
            ss.Monitor().merge("x", [0.1])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="errors"):
            ss.Monitor().merge("x", ss.Histogram(), errors=-1)
