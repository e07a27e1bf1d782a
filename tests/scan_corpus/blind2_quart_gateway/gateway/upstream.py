import asyncio

import httpx

RATES_URL = "https://rates.example.net"
_client: httpx.AsyncClient | None = None


def client() -> httpx.AsyncClient:
    global _client
    if _client is None:
        _client = httpx.AsyncClient(base_url=RATES_URL, timeout=5)  # ok: SLP102 memoised global
    return _client


async def quote(symbol: str) -> dict:
    resp = await client().get(f"/quote/{symbol}")
    resp.raise_for_status()
    return resp.json()


async def all_instruments(max_pages: int) -> list[dict]:
    items: list[dict] = []
    cursor = None
    for _ in range(max_pages):
        resp = await client().get("/instruments", params={"cursor": cursor})  # ok: SLP301 cursor carried to next page
        body = resp.json()
        items.extend(body["items"])
        cursor = body.get("next")
        if not cursor:
            break
    return items


async def polite_quotes(symbols: list[str]) -> list[dict]:
    out = []
    for symbol in symbols:
        out.append(await quote(symbol))  # ok: SLP301 deliberate throttle below
        await asyncio.sleep(0.25)
    return out


async def health(regions: list[dict]) -> dict[str, int]:
    status = {}
    for region in regions:
        async with httpx.AsyncClient(base_url=region["url"]) as probe:  # expect: SLP101
            resp = await probe.get("/health")  # expect: SLP301
        status[region["name"]] = resp.status_code
    return status


_sem = asyncio.Semaphore(8)


async def bounded_quote(symbol: str) -> dict:
    async with _sem:
        return await quote(symbol)
