import asyncio

import httpx
from fastapi import Depends, FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reports.deps import get_db, get_http, get_s3, shared_http
from reports.models import Report

app = FastAPI()
_limit = asyncio.Semaphore(16)


@app.on_event("startup")
async def startup() -> None:
    app.state.http = httpx.AsyncClient(timeout=10)  # ok: SLP102 startup hook, once


async def render(http: httpx.AsyncClient, report: Report) -> bytes:
    resp = await http.get(report.url)
    return resp.content


async def render_bounded(http: httpx.AsyncClient, report: Report) -> bytes:
    async with _limit:
        return await render(http, report)


@app.get("/reports")
async def all_reports(db: AsyncSession = Depends(get_db), http: httpx.AsyncClient = Depends(get_http)) -> int:
    reports = (await db.scalars(select(Report))).all()
    pages = await asyncio.gather(*[render(http, r) for r in reports], return_exceptions=True)  # expect: SLP302
    return sum(len(p) for p in pages if isinstance(p, bytes))


@app.get("/reports/bounded")
async def all_reports_bounded(db: AsyncSession = Depends(get_db), http: httpx.AsyncClient = Depends(get_http)) -> int:
    reports = (await db.scalars(select(Report))).all()
    pages = await asyncio.gather(*[render_bounded(http, r) for r in reports])  # ok: SLP302 bounded inside
    return sum(len(p) for p in pages)


@app.get("/reports/tasks")
async def all_reports_tasks(db: AsyncSession = Depends(get_db)) -> int:
    http = shared_http()  # ok: SLP102 memoised by a global guard
    reports = (await db.scalars(select(Report))).all()
    tasks = [asyncio.create_task(render(http, r)) for r in reports]  # ok: SLP502 gathered below
    pages = await asyncio.gather(*tasks)  # expect: SLP302
    return len(pages)


@app.get("/reports/appended")
async def all_reports_appended(db: AsyncSession = Depends(get_db)) -> int:
    http = shared_http()
    pending = []
    async for report in await db.stream_scalars(select(Report)):
        pending.append(render(http, report))
    pages = await asyncio.gather(*pending)  # expect: SLP302
    return len(pages)


@app.get("/reports/{report_id}/pair")
async def report_pair(report_id: int, db: AsyncSession = Depends(get_db), http: httpx.AsyncClient = Depends(get_http)) -> int:
    report = await db.get(Report, report_id)
    fixed = [render(http, report), render(http, report)]
    a, b = await asyncio.gather(*fixed)  # ok: SLP302 a fixed list
    return len(a) + len(b)


@app.get("/reports/sequential")
async def reports_sequential(db: AsyncSession = Depends(get_db), http: httpx.AsyncClient = Depends(get_http)) -> list[int]:
    reports = (await db.scalars(select(Report))).all()
    sizes = []
    for report in reports:
        sizes.append(len(await render(http, report)))  # expect: SLP301
    return sizes


@app.post("/reports/{report_id}/archive")
async def archive(report_id: int, http: httpx.AsyncClient = Depends(get_http)) -> dict:
    s3 = get_s3()  # ok: SLP102 memoised with lru_cache
    page = await http.get(f"https://reports.internal/{report_id}")
    await asyncio.to_thread(s3.put_object, Bucket="archive", Key=str(report_id), Body=page.content)  # ok: SLP401
    return {"ok": True}


@app.post("/reports/{report_id}/mirror")
async def mirror(report_id: int) -> dict:
    http = httpx.AsyncClient()  # expect: SLP102
    try:
        page = await http.get(f"https://reports.internal/{report_id}")
    finally:
        await http.aclose()
    return {"size": len(page.content)}


@app.post("/reports/{report_id}/mirror/shared")
async def mirror_shared(report_id: int, http: httpx.AsyncClient = Depends(get_http)) -> dict:
    page = await http.get(f"https://reports.internal/{report_id}")  # ok: SLP102 the client comes from app state
    return {"size": len(page.content)}
