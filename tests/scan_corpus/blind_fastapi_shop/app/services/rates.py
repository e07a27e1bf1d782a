import httpx

from app.config import settings

_client: httpx.AsyncClient | None = None
_rates: dict | None = None


def rates_client() -> httpx.AsyncClient:
    global _client
    if _client is None:
        _client = httpx.AsyncClient(base_url=settings.rates_url, timeout=5.0)
    return _client


async def latest_rates() -> dict:
    global _rates
    if _rates is None:  # expect: SLP503
        response = await rates_client().get("/latest")
        response.raise_for_status()
        _rates = response.json()["rates"]
    return _rates


async def rate_for(currency: str) -> float:
    response = await rates_client().get(f"/latest/{currency}")
    response.raise_for_status()
    return response.json()["rate"]
