"""Background work: fire-and-forget tasks and the ways to keep them."""

import asyncio
import logging

import anyio
import httpx
from fastapi import BackgroundTasks, FastAPI

from notifier.slack import post_message as notify_slack

log = logging.getLogger(__name__)
app = FastAPI()
_tasks: set[asyncio.Task] = set()
http = httpx.AsyncClient(timeout=10)


async def send_email(to: str, body: str) -> None:
    await http.post("https://mail.internal/send", json={"to": to, "body": body})


async def audit(event: dict) -> None:
    await http.post("https://audit.internal/events", json=event)


async def flush_metrics() -> None:
    await http.post("https://metrics.internal/flush")


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed: %r", task.exception())


@app.post("/signup")
async def signup(email: str) -> dict:
    asyncio.create_task(send_email(email, "welcome"))  # expect: SLP502
    asyncio.ensure_future(audit({"kind": "signup", "email": email}))  # expect: SLP502
    return {"ok": True}


@app.post("/signup/kept")
async def signup_kept(email: str) -> dict:
    task = asyncio.create_task(send_email(email, "welcome"))  # ok: SLP502 kept in a set
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return {"ok": True}


@app.post("/signup/background")
async def signup_background(email: str, background_tasks: BackgroundTasks) -> dict:
    background_tasks.add_task(send_email, email, "welcome")  # ok: SLP502 Starlette runs and keeps it
    return {"ok": True}


@app.post("/alerts")
async def alert(message: str) -> dict:
    loop = asyncio.get_running_loop()
    loop.create_task(notify_slack("#alerts", message))  # expect: SLP502
    warm = asyncio.create_task(flush_metrics())  # expect: SLP502
    return {"sent": True}


@app.post("/alerts/fanout")
async def alert_fanout(channels: list[str], message: str) -> dict:
    for channel in channels:
        asyncio.create_task(notify_slack(channel, message))  # expect: SLP502
    asyncio.get_event_loop().create_task(flush_metrics())  # expect: SLP502
    return {"channels": len(channels)}


@app.post("/alerts/fanout/grouped")
async def alert_fanout_grouped(channels: list[str], message: str) -> dict:
    async with asyncio.TaskGroup() as tg:
        for channel in channels:
            tg.create_task(notify_slack(channel, message))  # ok: SLP502 a TaskGroup keeps it
    async with anyio.create_task_group() as nursery:
        nursery.start_soon(flush_metrics)  # ok: SLP502
    return {"channels": len(channels)}


@app.post("/alerts/awaited")
async def alert_awaited(message: str) -> dict:
    task = asyncio.create_task(notify_slack("#alerts", message))  # ok: SLP502 awaited below
    metrics = asyncio.ensure_future(flush_metrics())  # ok: SLP502 cancelled below
    await asyncio.sleep(0)
    metrics.cancel()
    return {"ok": await task}


def schedule_flush() -> asyncio.Task:
    return asyncio.create_task(flush_metrics())  # ok: SLP502 returned to the caller


async def wait_all(items: list[dict]) -> None:
    pending = [asyncio.create_task(audit(i)) for i in items]  # ok: SLP502 waited on
    done, _ = await asyncio.wait(pending)
    log.info("audited %d", len(done))
