import asyncio
import logging

import httpx

from worker.delivery import Deliverer

log = logging.getLogger(__name__)


async def load_hooks(client: httpx.AsyncClient, tenant: str) -> list[dict]:
    resp = await client.get(f"https://config.internal/tenants/{tenant}/hooks")
    resp.raise_for_status()
    return resp.json()


async def consume(queue: asyncio.Queue, deliverer: Deliverer) -> None:
    async with httpx.AsyncClient() as config:  # ok: SLP102 built once per consumer, not per call
        while True:
            event = await queue.get()
            if event is None:
                break
            hooks = await load_hooks(config, event["tenant"])
            for hook in hooks:
                deliverer.schedule(hook, event)
            queue.task_done()


async def replay(tenants: list[str], events_by_tenant: dict[str, list[dict]]) -> None:
    deliverer = Deliverer()
    async with httpx.AsyncClient() as config:
        for tenant in tenants:
            hooks = await load_hooks(config, tenant)  # expect: SLP301
            for event in events_by_tenant.get(tenant, []):
                for hook in hooks:
                    deliverer.schedule(hook, event)
    await deliverer.close()


async def main() -> None:
    queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
    deliverer = Deliverer()
    workers = [asyncio.create_task(consume(queue, deliverer)) for _ in range(4)]  # ok: SLP502 kept in a list and awaited
    await queue.join()
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)  # ok: SLP302 gathers a fixed set of created tasks, not a comprehension
    await deliverer.close()


if __name__ == "__main__":
    asyncio.run(main())
