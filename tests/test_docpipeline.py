"""The document pipeline example (examples/docpipeline/) over real HTTP and PostgreSQL.

A local parse service (jobs of random length, ``202`` with ``Retry-After`` until done, a
``503`` on every 7th poll) and the LLM emulator (15 requests a second, ``429`` with
``Retry-After`` past that) on 127.0.0.1; 40 documents parsed, polled, classified and upserted
into PostgreSQL; then a restarted run over the same answer cache file."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss

from .conftest import EXAMPLES, load_example, need_service

pytestmark = pytest.mark.realtime

asyncpg = pytest.importorskip("asyncpg")
httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
sys.path.insert(0, str(EXAMPLES))
sys.path.insert(0, str(EXAMPLES / "docpipeline"))
import _serving  # noqa: E402
import pipeline as docpipe  # noqa: E402
import workload  # noqa: E402

_service = load_example("_job_service.py", "_job_service")
EMULATOR = EXAMPLES / "annotation" / "emulator.py"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
N = 40
TABLE = "docpipeline_test_labels"


def expected(documents: list[dict[str, str]]) -> dict[str, tuple[str, float, str]]:
    """What a correct run stores per document: the emulator's answer for its parsed text."""
    out = {}
    for doc in documents:
        text = _service.extract_text(doc["body"])
        answer = workload.answer_for(text, docpipe.SCHEMA)
        out[doc["id"]] = (answer["topic"], answer["confidence"], text)
    return out


async def stored(table: str) -> dict[str, tuple[str, float, str]]:
    conn = await asyncpg.connect(POSTGRES)
    try:
        rows = await conn.fetch(f"SELECT doc_id, topic, confidence, parsed FROM {table}")
    finally:
        await conn.close()
    return {r["doc_id"]: (r["topic"], r["confidence"], r["parsed"]) for r in rows}


async def execute(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def answered(url: str) -> dict[str, int]:
    """The emulator's answers so far, by status."""
    return {k: int(v) for k, v in httpx.get(f"{url}/stats").json().items()}


@pytest.fixture(scope="module")
def llm() -> Iterator[str]:
    args = ("--latency-ms", "10", "--rate", "15", "--burst", "2", "--p5xx", "0")
    with _serving.running(EMULATOR, *args) as url:
        yield url


@dataclass
class Run:
    report: ss.RunReport
    tools: Any  # docpipe.Instruments
    rows: dict[str, tuple[str, float, str]]
    gets: int  # GETs the parse service answered (every one a poll)
    service_503s: int
    answered: dict[str, int]  # the emulator's answers during this run, by status


def one_run(settings: Any, documents: list[dict[str, str]], llm: str) -> Run:
    """One process's run: a fresh parse service, registry and Cache over the same file."""
    before = answered(llm)

    async def main() -> tuple[Any, Any, int, int]:
        async with _service.JobService(seed=3, min_s=0.05, max_s=0.5, fail_every=7) as service:
            report, tools = await docpipe.process(
                docpipe.Settings(**{**vars(settings), "parse_url": service.url}), documents
            )
        return report, tools, service.gets, service.failures

    report, tools, gets, failures = asyncio.run(main())
    after = answered(llm)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return Run(report, tools, asyncio.run(stored(settings.table)), gets, failures, delta)


@pytest.fixture(scope="module")
def runs(llm: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Run, Run]]:
    """A first run from an empty table and cache, then a restarted run over the same cache
    file into the emptied table."""
    need_service("postgresql", "127.0.0.1", 5432)
    asyncio.run(execute(f"DROP TABLE IF EXISTS {TABLE}"))  # the sink's setup creates it
    settings = docpipe.Settings(
        parse_url="",  # each run starts its own parse service
        llm_url=llm,
        database_url=POSTGRES,
        cache_path=tmp_path_factory.mktemp("docpipeline") / "llm-cache.sqlite",
        table=TABLE,
        llm_initial_per_s=40.0,  # a first guess above the LLM's limit of 15/s
        poll_deadline_s=20.0,
    )
    documents = docpipe.make_documents(N)
    first = one_run(settings, documents, llm)
    asyncio.run(execute(f"TRUNCATE {TABLE}"))
    second = one_run(settings, documents, llm)
    try:
        yield first, second
    finally:
        asyncio.run(execute(f"DROP TABLE IF EXISTS {TABLE}"))


class TestDocumentPipeline:
    """Parse, poll, classify under a learnt rate limit, cache, store: the whole shape."""

    def test_every_document_is_stored_with_its_label(self, runs: tuple[Run, Run]) -> None:
        """Every document's row is in the table with the emulator's label for its parsed
        text, and no item failed, in both runs."""
        first, second = runs
        want = expected(docpipe.make_documents(N))
        assert (N, 0, 0) == (first.report.ok, first.report.failed, first.report.skipped)
        assert (N, 0, 0) == (second.report.ok, second.report.failed, second.report.skipped)
        assert want == first.rows
        assert want == second.rows
        assert 3 == first.report.client_creations  # parse client, LLM client, database pool

    def test_jobs_are_polled_and_the_polls_counted(self, runs: tuple[Run, Run]) -> None:
        """Every job is polled until done (more polls than documents, each one a GET the
        service answered), and its 503s are retried as transient, not counted as failures."""
        first, _ = runs
        polls = first.tools.poller.statistics()
        assert polls.polls > N
        assert first.gets == polls.polls
        assert (N, 0, 0) == (polls.completed, polls.timed_out, polls.failed)
        assert first.service_503s > 0
        assert first.service_503s == polls.transient_retries
        assert polls.server_waits == polls.not_ready  # every "pending" carried a Retry-After

    def test_the_llm_rate_limits_and_the_limiter_cuts_its_rate(self, runs: tuple[Run, Run]) -> None:
        """The LLM answers 429 at least once, and the adaptive limiter counts the throttles
        and cuts its rate below the first guess."""
        first, _ = runs
        rate = first.tools.limiter.statistics()
        assert first.answered.get("429", 0) >= 1
        assert rate.throttles == first.answered["429"]
        assert rate.decreases >= 1
        assert rate.rate_per_s < 40.0
        assert N == first.answered["200"]  # one answer per distinct prompt
        assert first.tools.llm_calls == first.answered["200"] + first.answered["429"]

    def test_a_restarted_run_makes_no_llm_call(self, runs: tuple[Run, Run]) -> None:
        """A second run, with a new Cache over the same SQLite file and no checkpoint,
        processes every document again (parse and store) but makes 0 LLM calls."""
        _, second = runs
        assert 0 == second.tools.llm_calls
        assert 0 == sum(second.answered.values())
        assert N == second.tools.cache.statistics().hits
        assert second.tools.poller.statistics().completed == N  # really parsed again


class TestCommandLine:
    """``run.py``: the example as a command."""

    def test_it_runs_and_prints_its_report(
        self, tmp_path: Path, llm: str, postgres_url: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With a local parse service of its own, it exits 0 and prints one JSON report with
        every document stored."""
        run = load_example("docpipeline/run.py", "docpipeline_run")
        table = "docpipeline_test_cli"
        asyncio.run(execute(f"DROP TABLE IF EXISTS {table}"))
        argv = ["--documents", "5", "--database-url", postgres_url, "--llm-url", llm]
        argv += ["--cache", str(tmp_path / "c.sqlite"), "--table", table, "--quiet"]
        try:
            assert 0 == run.main(argv)
            summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
            rows = asyncio.run(stored(table))
        finally:
            asyncio.run(execute(f"DROP TABLE IF EXISTS {table}"))
        assert (5, 0) == (summary["ok"], summary["failed"])
        assert summary["polls"] > 5
        assert expected(docpipe.make_documents(5)) == rows


class TestFailures:
    """What a document that cannot be processed becomes."""

    def test_a_job_that_never_finishes_fails_its_item_with_poll_timeout(
        self, tmp_path: Path, llm: str, postgres_url: str
    ) -> None:
        """A parse job still pending at the poll's deadline fails its item with PollTimeout
        (recorded, not retried), and no LLM call or row is made for it."""
        table = "docpipeline_test_timeout"
        asyncio.run(execute(f"DROP TABLE IF EXISTS {table}"))

        async def main() -> tuple[ss.RunReport, Any]:
            async with _service.JobService(min_s=30, max_s=30) as service:
                settings = docpipe.Settings(
                    parse_url=service.url,
                    llm_url=llm,
                    database_url=postgres_url,
                    cache_path=tmp_path / "c.sqlite",
                    table=table,
                    poll_deadline_s=0.3,
                )
                return await docpipe.process(settings, docpipe.make_documents(3))

        try:
            report, tools = asyncio.run(main())
            rows = asyncio.run(stored(table))
        finally:
            asyncio.run(execute(f"DROP TABLE IF EXISTS {table}"))
        assert (0, 3) == (report.ok, report.failed)
        assert all("PollTimeout" in f.error for f in report.failures)
        assert {"parse"} == {f.stage for f in report.failures}
        assert 3 == tools.poller.statistics().timed_out
        assert (0, {}) == (tools.llm_calls, rows)
