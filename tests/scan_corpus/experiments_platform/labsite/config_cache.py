from datetime import datetime, timedelta
from typing import Any

from fastapi import HTTPException, Request

_experiment_config_cache: dict[str, tuple[dict[str, Any], datetime]] = {}  # ok: SLP501 expired entries are deleted
CACHE_TTL_SECONDS = 300


async def get_experiment_config_cached(request: Request, slug_id: str) -> dict[str, Any] | None:
    cache_key = slug_id
    if cache_key in _experiment_config_cache:  # ok: SLP503 the body does not await
        config, timestamp = _experiment_config_cache[cache_key]
        if datetime.now() - timestamp < timedelta(seconds=CACHE_TTL_SECONDS):
            return config
        del _experiment_config_cache[cache_key]
    db = getattr(request.app.state, "mongo_db", None)
    if not db:
        raise HTTPException(500, "Database not available")
    config = await db.experiments_config.find_one({"slug": slug_id})
    _experiment_config_cache[cache_key] = (config, datetime.now())
    return config
