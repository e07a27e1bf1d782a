import asyncio

import aiohttp

API = "https://chat.example/api/v10"


class ChatAPI:
    def __init__(self, token: str) -> None:
        self.token = token
        self.http: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self.http is None:  # ok: SLP503 no await between the check and the assignment
            self.http = aiohttp.ClientSession(
                base_url=API, headers={"Authorization": f"Bot {self.token}"}
            )
        return self.http

    async def send(self, channel_id: int, content: str) -> dict:
        async with self.session().post(f"/channels/{channel_id}/messages", json={"content": content}) as r:
            r.raise_for_status()
            return await r.json()

    async def user(self, user_id: int) -> dict:
        async with self.session().get(f"/users/{user_id}") as r:
            r.raise_for_status()
            return await r.json()

    async def history(self, channel_id: int, before: int | None = None) -> list[dict]:
        params = {"limit": 100}
        if before:
            params["before"] = before
        async with self.session().get(f"/channels/{channel_id}/messages", params=params) as r:
            return await r.json()

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
            await asyncio.sleep(0.25)
