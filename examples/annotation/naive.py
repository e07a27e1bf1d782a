"""The "before": seed 000's annotation loop, as its write-up shows it.

For every schema, for every asset, in sequence: create the storage provider (a MinIO-like
handshake) and the LLM client, compile the schema to a pydantic model, fetch the asset, call the
model once, validate, and commit the row on its own. Errors are logged and the item becomes
``None`` (so a transient 503 silently loses a result). Kept faithful on purpose: it is the
baseline every figure is compared against.

Run alone: ``python examples/annotation/naive.py --endpoint URL --assets 8 --schemas 2``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import (
    compile_schema,
    connect_store,
    is_postgres,
    prompt,
)

log = logging.getLogger("naive")


@dataclass
class NaiveStats:
    seconds: float = 0.0
    ok: int = 0
    lost: int = 0  # errors turned into None
    calls: int = 0
    client_creations: int = 0
    db_round_trips: int = 0
    timeline: list[tuple[float, float]] = field(default_factory=list)


async def annotate(
    endpoint: str,
    assets_dir: Path | str,
    asset_ids: list[str],
    schemas: list[dict[str, Any]],
    db: str,
    *,
    handshake_s: float = 0.25,
    model_name: str = "annotator",
) -> NaiveStats:
    stats = NaiveStats()
    start = time.perf_counter()
    pg = None
    sqlite_conn = None
    if is_postgres(db):
        import asyncpg

        pg = await asyncpg.connect(db)
    else:
        sqlite_conn = sqlite3.connect(db)
    try:
        for schema in schemas:
            for asset_id in asset_ids:
                result = None
                try:
                    # BEFORE: new providers for every asset x schema
                    storage = await connect_store(assets_dir, handshake_s)
                    stats.client_creations += 1
                    async with httpx.AsyncClient(base_url=endpoint, timeout=30) as llm:
                        stats.client_creations += 1
                        (await llm.get("/v1/models")).raise_for_status()
                        model = compile_schema(schema)  # BEFORE: validated per asset
                        document = storage.read(asset_id)  # one get per asset, on the loop
                        t0 = time.perf_counter() - start
                        stats.calls += 1
                        response = await llm.post(
                            "/v1/chat/completions", json=prompt(document, schema, model_name)
                        )
                        stats.timeline.append((t0, time.perf_counter() - start))
                        response.raise_for_status()
                        content = response.json()["choices"][0]["message"]["content"]
                        result = model.model_validate_json(content)
                except Exception as exc:  # BEFORE: logged, and the item is gone
                    log.warning("annotation of %s failed: %s", asset_id, exc)
                if result is None:
                    stats.lost += 1
                    continue
                row = (
                    f"{asset_id}:{schema['$id']}",
                    asset_id,
                    schema["$id"],
                    json.dumps(result.model_dump(), sort_keys=True),
                )
                # BEFORE: one commit per row
                if pg is not None:
                    await pg.execute(
                        "INSERT INTO annotations VALUES ($1, $2, $3, $4) "
                        "ON CONFLICT (key) DO UPDATE SET label = excluded.label",
                        *row,
                    )
                else:
                    assert sqlite_conn is not None
                    sqlite_conn.execute(
                        "INSERT INTO annotations VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET label = excluded.label",
                        row,
                    )
                    sqlite_conn.commit()
                stats.db_round_trips += 1
                stats.ok += 1
    finally:
        if pg is not None:
            await pg.close()
        if sqlite_conn is not None:
            sqlite_conn.close()
    stats.seconds = time.perf_counter() - start
    return stats


def main() -> None:
    from workload import make_assets, make_schemas, prepare_db

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--assets", type=int, default=8)
    parser.add_argument("--schemas", type=int, default=2)
    parser.add_argument("--data", default="demo-output/data")
    parser.add_argument("--db", default="demo-output/naive.sqlite")
    args = parser.parse_args()
    assets_dir = Path(args.data) / "assets"
    ids = make_assets(assets_dir, args.assets)
    asyncio.run(prepare_db(args.db, reset=True))
    stats = asyncio.run(
        annotate(args.endpoint, assets_dir, ids, make_schemas(args.schemas), args.db)
    )
    print(
        f"{stats.ok} ok, {stats.lost} lost in {stats.seconds:.2f} s; "
        f"{stats.client_creations} client creations, {stats.db_round_trips} commits"
    )


if __name__ == "__main__":
    main()
