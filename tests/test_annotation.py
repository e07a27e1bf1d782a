"""The reference annotation workload over real HTTP: correct results, bad input handled, and
every figure the demo prints comes from a real run."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

import slipstream as ss

from .conftest import EXAMPLES, load_example

pytestmark = pytest.mark.realtime

sys.path.insert(0, str(EXAMPLES))
sys.path.insert(0, str(EXAMPLES / "annotation"))
import _serving  # noqa: E402
import fast  # noqa: E402
import naive  # noqa: E402
import workload  # noqa: E402

EMULATOR = EXAMPLES / "annotation" / "emulator.py"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    args = ("--latency-ms", "5", "--p5xx", "0.1", "--rate", "400", "--burst", "20")
    with _serving.running(EMULATOR, *args) as url:
        yield url


@pytest.fixture(scope="module")
def steady() -> Iterator[str]:
    """No transient errors: for tests that check which error an item ends with."""
    with _serving.running(EMULATOR, "--latency-ms", "5", "--p5xx", "0", "--rate", "0") as url:
        yield url


def settings(tmp: Path, url: str, **kw: Any) -> Any:
    return fast.Settings(
        endpoint=url,
        assets_dir=tmp / "assets",
        db=str(tmp / "r.sqlite"),
        handshake_s=0.01,
        rate_per_s=350,
        **kw,
    )


def test_the_emulator_answers_deterministically_and_valid(endpoint: str) -> None:
    """The emulator gives one answer per prompt, the workload's expected one, valid for its


    schema."""
    schema = workload.make_schemas(1)[0]
    body = workload.prompt("a document about law", schema)
    answers = set()
    for _ in range(6):
        r = httpx.post(f"{endpoint}/v1/chat/completions", json=body, timeout=5)
        if r.status_code == 200:
            answers.add(r.json()["choices"][0]["message"]["content"])
    assert 1 == len(answers)
    content = json.loads(answers.pop())
    assert workload.answer_for("a document about law", schema) == content
    workload.compile_schema(schema).model_validate(content)


def test_the_emulator_rate_limits_with_retry_after() -> None:
    """Past its rate the emulator answers 429 with a Retry-After header, as a real provider


    does."""
    with _serving.running(EMULATOR, "--latency-ms", "1", "--rate", "5", "--burst", "1") as url:
        body = workload.prompt("x", workload.make_schemas(1)[0])
        statuses = [
            httpx.post(f"{url}/v1/chat/completions", json=body).status_code for _ in range(3)
        ]
        r = httpx.post(f"{url}/v1/chat/completions", json=body)
    assert 429 in statuses or r.status_code == 429
    if r.status_code == 429:
        assert 0 < float(r.headers["Retry-After"]) <= 0.2


def test_fast_stores_exactly_the_expected_results_and_records_bad_input(
    tmp_path: Path, steady: str
) -> None:
    """The fast pipeline stores exactly the expected rows and records every bad input (garbage


    answer, missing asset, broken schema) as a failure or skip with its reason."""
    ids = workload.make_assets(tmp_path / "assets", 12, garbage=1)  # asset 0 gets garbage
    (tmp_path / "assets" / "asset-00005.txt").unlink()  # a missing asset
    schemas = workload.make_schemas(3)
    schemas.append({"$id": "broken", "type": "object", "properties": {"x": {"type": "date"}}})
    report, counters = asyncio.run(
        fast.annotate(
            settings(tmp_path, steady, checkpoint=str(tmp_path / "c.sqlite")), ids, schemas
        )
    )
    expect = workload.expected(tmp_path / "assets", ids, schemas)
    assert expect == asyncio.run(workload.stored(str(tmp_path / "r.sqlite")))
    assert 30 == len(expect)  # 10 good assets x 3 valid schemas
    assert (30, 4) == (report.ok, report.skipped)  # the missing asset, once per schema
    assert 14 == report.failed  # 11 assets x the broken schema + garbage x 3 valid schemas
    assert 2 == report.client_creations  # one storage client, one HTTP client
    assert counters.calls == 30 + 3 + report.retries  # invalid schema items never call

    async def failures() -> list[Any]:
        async with ss.Checkpoint(tmp_path / "c.sqlite") as cp:
            return await cp.failures("annotation")

    by_key = {f.key: f for f in asyncio.run(failures())}
    garbage = by_key["asset-00000:schema-0"]
    assert garbage.error.startswith("AnswerInvalid")
    raw = json.loads(garbage.detail)  # the model's raw answer is kept
    assert "topic" not in raw
    assert "confidence" in raw
    broken = by_key["asset-00001:broken"]
    assert "InvalidSchema" in broken.error
    assert "unknown type 'date'" in broken.error


def test_an_unreachable_endpoint_fails_before_any_work(tmp_path: Path) -> None:
    """An LLM endpoint that cannot be reached stops the run in setup, before any item."""
    ids = workload.make_assets(tmp_path / "assets", 3)
    with pytest.raises(ss.PipelineError, match="setup of stage 'classify' failed"):
        asyncio.run(
            fast.annotate(settings(tmp_path, "http://127.0.0.1:1"), ids, workload.make_schemas(1))
        )
    assert {} == asyncio.run(workload.stored(str(tmp_path / "r.sqlite")))


def test_a_wrong_database_url_fails_before_any_work(tmp_path: Path, endpoint: str) -> None:
    """A database URL that cannot be opened stops the run before any item."""
    ids = workload.make_assets(tmp_path / "assets", 3)
    bad = fast.Settings(
        endpoint=endpoint,
        assets_dir=tmp_path / "assets",
        db="postgresql://postgres@127.0.0.1:1/none",
    )
    with pytest.raises(ConnectionError, match="cannot reach the results database"):
        asyncio.run(fast.annotate(bad, ids, workload.make_schemas(1)))


def test_fast_writes_to_postgres(tmp_path: Path, endpoint: str, postgres_url: str) -> None:
    """The fast pipeline stores the expected rows in PostgreSQL with three clients in all."""
    ids = workload.make_assets(tmp_path / "assets", 6)
    schemas = workload.make_schemas(2)
    asyncio.run(workload.prepare_db(postgres_url, reset=True))
    s = fast.Settings(
        endpoint=endpoint, assets_dir=tmp_path / "assets", db=postgres_url, handshake_s=0.01
    )
    report, _ = asyncio.run(fast.annotate(s, ids, schemas))
    assert 12 == report.ok
    assert 3 == report.client_creations  # storage, HTTP client, database pool
    assert workload.expected(tmp_path / "assets", ids, schemas) == asyncio.run(
        workload.stored(postgres_url)
    )


def test_naive_makes_clients_per_pair_and_loses_errors(tmp_path: Path, endpoint: str) -> None:
    """The naive loop builds clients for every pair, commits per row and loses the failed


    calls."""
    ids = workload.make_assets(tmp_path / "assets", 10)
    schemas = workload.make_schemas(2)
    db = str(tmp_path / "n.sqlite")
    asyncio.run(workload.prepare_db(db))
    stats = asyncio.run(
        naive.annotate(endpoint, tmp_path / "assets", ids, schemas, db, handshake_s=0.0)
    )
    assert 40 == stats.client_creations
    assert 20 == stats.ok + stats.lost
    assert stats.ok >= 12  # 10% of calls fail with a 503 and are lost, not the rest
    assert stats.ok == stats.db_round_trips  # a commit per row
    stored = asyncio.run(workload.stored(db))
    expect = workload.expected(tmp_path / "assets", ids, schemas)
    assert stats.ok == len(stored)
    assert all(expect[k] == v for k, v in stored.items())


def test_the_demo_prints_the_table_and_writes_the_chart(tmp_path: Path, endpoint: str) -> None:
    """The demo exits 0 after printing its table and writing a real PNG chart."""
    # by path: examples/docpipeline/run.py is also a module called "run" on sys.path
    run: ModuleType = load_example("annotation/run.py", "annotation_run")
    out = tmp_path / "out"
    code = run.main(
        ["--assets", "4", "--schemas", "2", "--endpoint", endpoint, "--output", str(out), "--quiet"]
    )
    assert 0 == code
    png = out / "timeline.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 5_000


def test_the_llm_stage_on_dask_gives_the_same_results(tmp_path: Path, steady: str) -> None:
    """The LLM stage on Dask workers stores the same rows and records the same failures as a


    local run."""
    pytest.importorskip("distributed")
    ids = workload.make_assets(tmp_path / "assets", 8, garbage=1)
    schemas = workload.make_schemas(2)
    s = settings(
        tmp_path,
        steady,
        runner=ss.DaskRunner(batch_size=5, n_workers=2),
        checkpoint=str(tmp_path / "c.sqlite"),
    )
    report, _ = asyncio.run(fast.annotate(s, ids, schemas))
    expect = workload.expected(tmp_path / "assets", ids, schemas)
    assert expect == asyncio.run(workload.stored(str(tmp_path / "r.sqlite")))
    assert (14, 2) == (report.ok, report.failed)

    async def failures() -> list[Any]:
        async with ss.Checkpoint(tmp_path / "c.sqlite") as cp:
            return await cp.failures("annotation")

    garbage = {f.key: f for f in asyncio.run(failures())}["asset-00000:schema-1"]
    assert garbage.error.startswith("AnswerInvalid")  # it travelled back from the worker as itself
    assert "is_technical" in json.loads(garbage.detail)


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An S3-compatible server (moto) on 127.0.0.1, real HTTP; yields the bucket's URL."""
    pytest.importorskip("boto3")
    server_mod = pytest.importorskip("moto.server")
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"s3://assets/batch-1?endpoint=http://{host}:{port}"
    finally:
        server.stop()


def test_assets_from_an_s3_bucket(tmp_path: Path, steady: str, s3_bucket: str) -> None:
    """Assets read from an S3 bucket give the expected rows, and a deleted object is skipped."""
    ids = workload.make_assets(tmp_path / "assets", 6)
    assert 6 == asyncio.run(workload.fill_bucket(s3_bucket, tmp_path / "assets"))
    store = asyncio.run(workload.S3Store.connect(s3_bucket))
    store.client.delete_object(Bucket="assets", Key="batch-1/asset-00002.txt")
    schemas = workload.make_schemas(2)
    report, _ = asyncio.run(
        fast.annotate(settings(tmp_path, steady, storage=s3_bucket), ids, schemas)
    )
    assert (10, 2, 0) == (report.ok, report.skipped, report.failed)  # the deleted asset: skipped
    (tmp_path / "assets" / "asset-00002.txt").unlink()
    assert workload.expected(tmp_path / "assets", ids, schemas) == asyncio.run(
        workload.stored(str(tmp_path / "r.sqlite"))
    )
    wrong = s3_bucket.replace("s3://assets/", "s3://no-such-bucket/")
    with pytest.raises(ss.PipelineError, match="no-such-bucket"):
        asyncio.run(fast.annotate(settings(tmp_path, steady, storage=wrong), ids, schemas))


def test_a_down_endpoint_trips_the_breaker_and_retry_failed_finishes_later(
    tmp_path: Path, steady: str
) -> None:
    """A down endpoint opens the breaker (few calls, every item recorded), and retry_failed


    finishes the run once it is back."""
    ids = workload.make_assets(tmp_path / "assets", 50)
    schemas = workload.make_schemas(2)
    checkpoint = str(tmp_path / "c.sqlite")
    with _serving.running(EMULATOR, "--latency-ms", "2", "--p5xx", "1.0") as down:
        report, counters = asyncio.run(
            fast.annotate(settings(tmp_path, down, checkpoint=checkpoint), ids, schemas)
        )
    assert (0, 100) == (report.ok, report.failed)  # recorded, not lost
    assert counters.calls <= 40  # not 100 items x 4 attempts against a dead endpoint
    assert sum("CircuitOpen" in f.error for f in report.failures) >= 80
    again, _ = asyncio.run(
        fast.annotate(
            settings(tmp_path, steady, checkpoint=checkpoint), ids, schemas, retry_failed=True
        )
    )
    assert (100, 0) == (again.ok, again.failed)
    assert workload.expected(tmp_path / "assets", ids, schemas) == asyncio.run(
        workload.stored(str(tmp_path / "r.sqlite"))
    )
