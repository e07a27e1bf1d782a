import hashlib
from pathlib import Path

import aiohttp

CACHE_DIR = Path("/var/cache/social")


async def fetch_feed(http: aiohttp.ClientSession, url: str) -> bytes:
    resp = await http.get(url)
    return await resp.read()


def store_snapshot(name: str, body: bytes) -> str:
    digest = hashlib.sha256(body).hexdigest()
    (CACHE_DIR / f"{name}-{digest}.xml").write_bytes(body)
    return digest


def snapshot_many(items: dict[str, bytes]) -> list[str]:
    return [store_snapshot(name, body) for name, body in items.items()]
