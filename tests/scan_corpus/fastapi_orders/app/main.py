import asyncio
from contextlib import asynccontextmanager

import httpx
import requests
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from app import repo
from app.db import get_db
from app.models import AuditEvent, Order, OrderLine, User
from app.notify import describe, render_email, send_webhook
from app.repo import get_user as load_user
from app.settings import LEGACY_URL, WEBHOOK_TIMEOUT_S


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.http = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S)  # ok: SLP102 built once at startup
    yield
    await app.state.http.aclose()


app = FastAPI(lifespan=lifespan)
router = APIRouter(prefix="/orders")


class LineIn(BaseModel):
    sku: str
    quantity: int


class OrderIn(BaseModel):
    user_id: int
    lines: list[LineIn]


class BulkIn(BaseModel):
    order_ids: list[int]
    user_ids: list[int] = []


@router.get("/{order_id}")
async def read_order(order_id: int, db: AsyncSession = Depends(get_db)) -> dict:
    order = await db.get(Order, order_id)
    if order is None:
        raise HTTPException(status_code=404)
    lines = (await db.scalars(select(OrderLine).where(OrderLine.order_id == order_id))).all()
    products = {}
    for line in lines:
        products[line.sku] = await repo.product_by_sku(db, line.sku)  # expect: SLP201  # ok: SLP301
    return {"id": order.id, "lines": [{"sku": s, "price": p.price_cents} for s, p in products.items()]}


@router.get("/{order_id}/fast")
async def read_order_fast(order_id: int, db: AsyncSession = Depends(get_db)) -> dict:
    lines = (await db.scalars(select(OrderLine).where(OrderLine.order_id == order_id))).all()
    products = await repo.products_by_skus(db, [line.sku for line in lines])
    seen: dict[str, int] = {}
    for line in lines:
        product = products.get(line.sku)  # ok: SLP201 dict.get on a dict built by a query
        seen[line.sku] = seen.get(line.sku, 0) + line.quantity  # ok: SLP201
        if product is None:
            raise HTTPException(status_code=409, detail=line.sku)
    return {"skus": seen}


@router.post("/users/lookup")
async def lookup_users(body: BulkIn, db: AsyncSession = Depends(get_db)) -> list[str]:
    emails = []
    for uid in body.user_ids:
        user = await load_user(db, uid)  # expect: SLP201
        if user is not None:
            emails.append(user.email)
    direct = [await db.get(User, uid) for uid in body.user_ids]  # expect: SLP201
    return emails + [u.email for u in direct if u]


@router.post("/ship")
async def ship_orders(body: BulkIn, db: AsyncSession = Depends(get_db)) -> dict:
    for oid in body.order_ids:
        await repo.mark_shipped(db, oid)  # expect: SLP202
        await db.execute(insert(AuditEvent).values(order_id=oid, kind="shipped"))  # expect: SLP202
    await db.commit()  # ok: SLP203 one commit after the loop
    return {"shipped": len(body.order_ids)}


@router.post("/import")
async def import_orders(payload: list[OrderIn], db: AsyncSession = Depends(get_db)) -> int:
    count = 0
    for item in payload:
        order = Order(user_id=item.user_id)
        await repo.save_order(db, order)  # expect: SLP203
        for line in item.lines:
            db.add(OrderLine(order_id=order.id, sku=line.sku, quantity=line.quantity))  # ok: SLP202
        count += 1
    for attempt in range(3):
        try:
            await db.commit()  # ok: SLP203 retry loop
            break
        except OperationalError:
            await asyncio.sleep(0.2 * (attempt + 1))
    return count


@router.post("/{order_id}/notify")
async def notify_order(order_id: int, db: AsyncSession = Depends(get_db)) -> dict:
    order = await db.get(Order, order_id)
    user = await db.get(User, order.user_id)
    body = render_email(order_id, user.email)  # expect: SLP401
    hooks = await repo.webhooks(db)
    codes = []
    async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S) as client:  # expect: SLP102
        for hook in hooks:
            codes.append(await send_webhook(client, hook.url, {"order": order_id, "body": body}))  # expect: SLP301
    return {"codes": codes}


@router.post("/{order_id}/broadcast")
async def broadcast(order_id: int, request: Request, db: AsyncSession = Depends(get_db)) -> dict:
    client: httpx.AsyncClient = request.app.state.http
    hooks = await repo.webhooks(db)
    payload = {"order": order_id}
    codes = await asyncio.gather(*[send_webhook(client, h.url, payload) for h in hooks])  # expect: SLP302
    primary, backup = await asyncio.gather(  # ok: SLP302 fixed arity
        send_webhook(client, "https://hooks.internal/primary", payload),
        send_webhook(client, "https://hooks.internal/backup", payload),
    )
    text = describe(payload)  # ok: SLP401 pure function
    return {"codes": codes, "primary": primary, "backup": backup, "text": text}


@router.get("/legacy/export")
def legacy_export() -> str:
    response = requests.get(LEGACY_URL, timeout=5)  # ok: SLP401 sync handler runs in a threadpool
    return response.text


@router.get("/healthz")
async def healthz(request: Request) -> dict:
    timeout = httpx.Timeout(2.0)  # ok: SLP102 a timeout is not a client
    client: httpx.AsyncClient = request.app.state.http
    response = await client.get("https://db.internal/ping", timeout=timeout)
    return {"db": response.status_code}


app.include_router(router)
