import asyncio
import json
import logging

import anyio
import httpx
from starlette.concurrency import run_in_threadpool

from worker.signing import digest_file, sign

log = logging.getLogger(__name__)


class Deliverer:
    def __init__(self) -> None:
        self.client = httpx.AsyncClient(timeout=10.0)
        self.pending: set[asyncio.Task] = set()

    async def deliver(self, hook: dict, event: dict) -> int:
        body = json.dumps(event).encode()
        signature = sign(hook["tenant"], body)  # expect: SLP401
        resp = await self.client.post(hook["url"], content=body, headers={"X-Sig": signature})
        return resp.status_code

    async def deliver_offloaded(self, hook: dict, event: dict) -> int:
        body = json.dumps(event).encode()
        signature = await run_in_threadpool(sign, hook["tenant"], body)  # ok: SLP401 passed to run_in_threadpool, not called
        resp = await self.client.post(hook["url"], content=body, headers={"X-Sig": signature})
        return resp.status_code

    async def deliver_with_retry(self, hook: dict, event: dict) -> int:
        for attempt in range(3):
            try:
                return await self.deliver_offloaded(hook, event)  # ok: SLP301 retry loop, returns on success
            except httpx.TransportError:
                await asyncio.sleep(2**attempt)
        return 0

    async def fan_out(self, hooks: list[dict], event: dict) -> list[int]:
        results = []
        for hook in hooks:
            results.append(await self.deliver_offloaded(hook, event))  # expect: SLP301
        return results

    async def fan_out_grouped(self, hooks: list[dict], event: dict) -> None:
        async with asyncio.TaskGroup() as tg:
            for hook in hooks:
                tg.create_task(self.deliver_offloaded(hook, event))  # ok: SLP502 owned by the TaskGroup

    async def fan_out_anyio(self, hooks: list[dict], event: dict) -> None:
        async with anyio.create_task_group() as tg:
            for hook in hooks:
                tg.start_soon(self.deliver_offloaded, hook, event)

    def schedule(self, hook: dict, event: dict) -> None:
        task = asyncio.create_task(self.deliver_with_retry(hook, event))  # ok: SLP502 kept in self.pending
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def attach_checksum(self, event: dict) -> dict:
        event["sha256"] = await anyio.to_thread.run_sync(digest_file, event["path"])  # ok: SLP401 passed to a thread
        return event

    async def attach_checksum_inline(self, event: dict) -> dict:
        event["sha256"] = digest_file(event["path"])  # expect: SLP401
        return event

    async def close(self) -> None:
        await asyncio.gather(*self.pending, return_exceptions=True)  # ok: SLP302 waits for tasks already running, starts nothing
        await self.client.aclose()
