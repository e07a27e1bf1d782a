import asyncio
import subprocess
import time

import asyncpg
import httpx
from arq.connections import RedisSettings

from jobs.config import PG_DSN, REDIS_URL


async def startup(ctx: dict) -> None:
    ctx["pool"] = await asyncpg.create_pool(PG_DSN, min_size=2, max_size=10)
    ctx["http"] = httpx.AsyncClient(timeout=10)


async def shutdown(ctx: dict) -> None:
    await ctx["http"].aclose()
    await ctx["pool"].close()


async def sync_invoices(ctx: dict, account_id: int) -> int:
    pool: asyncpg.Pool = ctx["pool"]
    async with pool.acquire() as conn:
        invoices = await conn.fetch(
            "SELECT id, customer_id, total FROM invoice WHERE account_id = $1 AND synced_at IS NULL",
            account_id,
        )
        for inv in invoices:
            customer = await conn.fetchrow(  # expect: SLP201
                "SELECT email, country FROM customer WHERE id = $1", inv["customer_id"]
            )
            if customer["country"] == "XX":
                continue
            await conn.execute("UPDATE invoice SET synced_at = now() WHERE id = $1", inv["id"])  # expect: SLP202
    return len(invoices)


async def sync_invoices_batched(ctx: dict, account_id: int) -> None:
    pool: asyncpg.Pool = ctx["pool"]
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT i.id FROM invoice i JOIN customer c ON c.id = i.customer_id "
            "WHERE i.account_id = $1 AND c.country <> 'XX'",
            account_id,
        )
        await conn.executemany(  # ok: SLP202 one batched statement
            "UPDATE invoice SET synced_at = now() WHERE id = $1", [(r["id"],) for r in rows]
        )


async def deliver_webhooks(ctx: dict, event: dict, urls: list[str]) -> None:
    http: httpx.AsyncClient = ctx["http"]
    for url in urls:
        await http.post(url, json=event)  # expect: SLP301


async def deliver_with_backoff(ctx: dict, event: dict, url: str) -> None:
    http: httpx.AsyncClient = ctx["http"]
    for attempt in range(5):
        resp = await http.post(url, json=event)  # ok: SLP301 retry loop
        if resp.status_code < 500:
            return
        time.sleep(2**attempt)  # expect: SLP401


async def render_pdf(ctx: dict, html_path: str) -> str:
    out = html_path.replace(".html", ".pdf")
    subprocess.run(["wkhtmltopdf", html_path, out], check=True)  # expect: SLP401
    return out


async def render_pdf_offloaded(ctx: dict, html_path: str) -> str:
    out = html_path.replace(".html", ".pdf")
    await asyncio.to_thread(subprocess.run, ["wkhtmltopdf", html_path, out], check=True)  # ok: SLP401 to_thread
    return out


class WorkerSettings:
    functions = [sync_invoices, sync_invoices_batched, deliver_webhooks, deliver_with_backoff, render_pdf]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(REDIS_URL)
