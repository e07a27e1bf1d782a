import redis.asyncio as aioredis

from ingest.codec import Event


class Enricher:
    def __init__(self, url: str) -> None:
        self.redis = aioredis.Redis.from_url(url, decode_responses=True)

    async def enrich(self, events: list[Event]) -> list[dict]:
        out = []
        for evt in events:
            profile = await self.redis.hgetall(f"user:{evt.user_id}")  # expect: SLP201
            out.append({"event": evt, "segment": profile.get("segment", "none")})
        return out

    async def enrich_pipelined(self, events: list[Event]) -> list[dict]:
        pipe = self.redis.pipeline()
        for evt in events:
            pipe.hgetall(f"user:{evt.user_id}")  # ok: SLP201 queued on a pipeline, one round trip
        profiles = await pipe.execute()
        return [{"event": e, "segment": p.get("segment", "none")} for e, p in zip(events, profiles)]
