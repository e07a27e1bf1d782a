import asyncio

import httpx

RATINGS_URL = "https://ratings.example.org"


class RatingsClient:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self._http: httpx.AsyncClient | None = None
        self._sem = asyncio.Semaphore(10)

    async def _client(self) -> httpx.AsyncClient:
        if self._http is None:  # expect: SLP503
            async with httpx.AsyncClient(base_url=RATINGS_URL) as auth:
                token = (await auth.post("/token", json={"key": self.api_key})).json()["token"]
            self._http = httpx.AsyncClient(base_url=RATINGS_URL, headers={"Authorization": f"Bearer {token}"})
        return self._http

    async def rating(self, isbn: str) -> float | None:
        http = await self._client()
        resp = await http.get(f"/isbn/{isbn}")
        return resp.json().get("avg") if resp.status_code == 200 else None

    async def rating_bounded(self, isbn: str) -> float | None:
        async with self._sem:
            return await self.rating(isbn)


ratings = RatingsClient(api_key="from-env")
