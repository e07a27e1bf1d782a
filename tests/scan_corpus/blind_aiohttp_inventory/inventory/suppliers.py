import asyncio

import aiohttp

SUPPLIER_LIMIT = asyncio.Semaphore(8)


async def supplier_price(session: aiohttp.ClientSession, supplier: dict, sku: str) -> float | None:
    async with session.get(f"{supplier['url']}/price/{sku}", timeout=aiohttp.ClientTimeout(total=3)) as resp:
        if resp.status != 200:
            return None
        data = await resp.json()
        return float(data["price"])


async def bounded_price(session: aiohttp.ClientSession, supplier: dict, sku: str) -> float | None:
    async with SUPPLIER_LIMIT:
        return await supplier_price(session, supplier, sku)


async def best_price(session: aiohttp.ClientSession, suppliers: list[dict], sku: str) -> float | None:
    prices = await asyncio.gather(*[supplier_price(session, s, sku) for s in suppliers])  # expect: SLP302
    found = [p for p in prices if p is not None]
    return min(found) if found else None


async def best_price_bounded(session: aiohttp.ClientSession, suppliers: list[dict], sku: str):
    prices = await asyncio.gather(*[bounded_price(session, s, sku) for s in suppliers])  # ok: SLP302 each call takes the semaphore
    found = [p for p in prices if p is not None]
    return min(found) if found else None
