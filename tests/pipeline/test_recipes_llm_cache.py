"""Recipe: an LLM response cache inside a pipeline, keyed by prompt, surviving restarts.

A stage calls a local OpenAI-compatible emulator (examples/annotation/emulator.py) through
``ss.cached`` on an ``ss.Cache`` kept in a SQLite file. A second run, with a new ``Cache``
over the same file (a restarted process), makes no LLM call at all; within one run, documents
whose prompts are the same share one call."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss

from ..conftest import EXAMPLES

pytestmark = pytest.mark.realtime

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
sys.path.insert(0, str(EXAMPLES))
sys.path.insert(0, str(EXAMPLES / "annotation"))
import _serving  # noqa: E402
import workload  # noqa: E402

EMULATOR = EXAMPLES / "annotation" / "emulator.py"
SCHEMA = workload.make_schemas(1)[0]


# -- the recipe ----------------------------------------------------------------------------


def build(
    documents: list[dict[str, str]],
    endpoint: str,
    cache_path: Path,
    db: Path,
    registry: ss.Registry,
    calls: list[str],
) -> ss.Pipeline[dict[str, str]]:
    """Documents -> prompt -> LLM (cached by prompt in SQLite) -> labels table."""
    cache = ss.Cache(sqlite_path=cache_path, ttl_s=None)  # kept until evicted, across runs

    def to_prompt(doc: dict[str, str]) -> str:
        # the prompt is the whole request: model, temperature, schema and text. Everything the
        # answer depends on is in it, so it is a correct cache key.
        return json.dumps(workload.prompt(doc["text"], SCHEMA), sort_keys=True)

    @ss.cached(cache, name="llm.complete", exclude=("client",))
    async def complete(prompt: str, client: Any) -> str:
        calls.append(prompt)  # only a cache miss gets here
        response = await client.post(
            "/v1/chat/completions", content=prompt, headers={"content-type": "application/json"}
        )
        response.raise_for_status()
        return str(response.json()["choices"][0]["message"]["content"])

    async def llm_client() -> Any:
        return await registry.get("llm", lambda: httpx.AsyncClient(base_url=endpoint))

    return ss.Pipeline(
        documents,
        [
            ss.Stage(to_prompt),
            ss.Stage(complete, setup=llm_client, concurrency=8, retry=ss.Retry(attempts=4)),
        ],
        ss.sqlite_flush(
            db,
            "labels",
            ["id", "label"],
            conflict=["id"],
            setup=lambda conn: conn.execute(
                "CREATE TABLE IF NOT EXISTS labels (id TEXT PRIMARY KEY, label TEXT)"
            ),
        ),
        key=lambda doc: doc["id"],
        row=lambda item, label: (item.key, label),
    )


async def run_once(endpoint: str, cache_path: Path, db: Path) -> tuple[ss.RunReport, list[str]]:
    """One process's run: its own registry, its own Cache over the shared file."""
    calls: list[str] = []
    async with ss.Registry("recipe") as registry:
        pipeline = build(DOCUMENTS, endpoint, cache_path, db, registry, calls)
        report = await pipeline.run()
    return report, calls


# 12 documents, 9 distinct texts: 3 are repeats whose prompt is one already asked
TEXTS = [f"document {i} about {'law' if i % 2 else 'biology'}" for i in range(9)]
DOCUMENTS = [{"id": f"doc-{i}", "text": TEXTS[i % 9]} for i in range(12)]


# -- the test ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with _serving.running(EMULATOR, "--latency-ms", "5", "--p5xx", "0", "--rate", "0") as url:
        yield url


def answered(endpoint: str) -> int:
    """How many completions the emulator has answered (200s)."""
    return int(httpx.get(f"{endpoint}/stats").json().get("200", 0))


def labels(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT id, label FROM labels"))
    finally:
        conn.close()


class TestLLMCacheRecipe:
    """The cached LLM stage, across a simulated restart."""

    def test_a_restarted_run_makes_no_llm_call(self, tmp_path: Path, endpoint: str) -> None:
        """The first run calls the LLM once per distinct prompt (9 for 12 documents); the
        second, with a new Cache over the same SQLite file, makes 0 calls and writes the same
        12 labels."""
        cache_path, db = tmp_path / "llm-cache.sqlite", tmp_path / "labels.sqlite"
        before = answered(endpoint)
        first, first_calls = asyncio.run(run_once(endpoint, cache_path, db))
        after_first = answered(endpoint)
        stored = labels(db)
        second, second_calls = asyncio.run(run_once(endpoint, cache_path, db))

        assert (12, 12) == (first.ok, second.ok)
        assert (9, 9) == (len(first_calls), after_first - before)
        assert ([], after_first) == (second_calls, answered(endpoint))
        assert stored == labels(db)
        assert 12 == len(stored)
        expect = workload.answer_for(TEXTS[1], SCHEMA)
        assert expect == json.loads(stored["doc-1"])
