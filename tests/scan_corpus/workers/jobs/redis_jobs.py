import asyncio
import json

import redis
import redis.asyncio as aioredis

import slipstream as ss

r = redis.Redis.from_url("redis://cache:6379/0")
ar = aioredis.from_url("redis://cache:6379/0")
_local: dict[str, str] = {}  # ok: SLP501 cleared every run


def warm(keys: list[str]) -> dict[str, bytes | None]:
    out = {}
    for key in keys:
        out[key] = r.get(key)  # expect: SLP201
        if r.exists(f"{key}:lock"):  # expect: SLP201
            continue
        r.hset(f"meta:{key}", mapping={"warm": 1})  # expect: SLP202
        r.rpush("warmed", key)  # expect: SLP202
    return out


def warm_pipelined(keys: list[str]) -> list:
    pipe = r.pipeline()
    for key in keys:
        pipe.get(key)  # ok: SLP201 queued on a pipeline
        pipe.hset(f"meta:{key}", mapping={"warm": 1})  # ok: SLP202 queued on a pipeline
    values = pipe.execute()
    many = r.mget(keys)  # ok: SLP201 one call, not in a loop
    return values + many


def local_lookup(keys: list[str]) -> list[str | None]:
    _local.clear()
    return [_local.get(k) for k in keys]  # ok: SLP201 a dict


async def read_async(keys: list[str]) -> list:
    values = []
    for k in keys:
        values.append(await ar.get(k))  # expect: SLP201  # ok: SLP301 awaited queries are SLP201
    return values


def enrich(user_id: str) -> dict:
    conn = redis.Redis(host="cache", port=6379)  # expect: SLP102
    return json.loads(conn.get(f"user:{user_id}") or "{}")


def enrich_shared(user_id: str) -> dict:
    return json.loads(r.get(f"user:{user_id}") or "{}")


async def run(user_ids: list[str]) -> None:
    pipeline = ss.Pipeline([ss.Stage(enrich, concurrency=8), ss.Stage(enrich_shared, concurrency=8)])
    await pipeline.run(user_ids)
    await asyncio.sleep(0)
