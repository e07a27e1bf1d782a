import asyncio
import csv
from pathlib import Path

from litestar import Controller, get, post
from litestar.response import File
from sqlalchemy.ext.asyncio import AsyncSession

from shop.mail import send_confirmation
from shop.models import Customer
from shop.repositories import OrderRepository
from shop.services import LineIn, OrderService
from shop.settings import settings

_background: set[asyncio.Task] = set()


class OrderController(Controller):
    path = "/orders"

    @post("/")
    async def create(self, data: dict, db_session: AsyncSession) -> dict:
        service = OrderService(db_session)
        items = [LineIn(**row) for row in data["items"]]
        order = await service.place(data["customer_id"], items)
        asyncio.create_task(send_confirmation(order.id, data["email"]))  # expect: SLP502
        return {"id": order.id}

    @post("/bulk")
    async def create_bulk(self, data: dict, db_session: AsyncSession) -> dict:
        service = OrderService(db_session)
        order = await service.place_prefetched(data["customer_id"], [LineIn(**r) for r in data["items"]])
        task = asyncio.create_task(send_confirmation(order.id, data["email"]))  # ok: SLP502 kept in a set
        _background.add(task)
        task.add_done_callback(_background.discard)
        return {"id": order.id}

    @get("/{order_id:int}/invoice")
    async def invoice(self, order_id: int, db_session: AsyncSession) -> File:
        lines = await OrderRepository(db_session).lines_of(order_id)
        path = Path(settings.invoice_dir) / f"{order_id}.csv"
        with open(path, "w", newline="") as fh:  # expect: SLP401
            writer = csv.writer(fh)
            for line in lines:
                writer.writerow([line.product_id, line.quantity, line.unit_price])
        return File(path=path)

    @get("/recent")
    async def recent(self, db_session: AsyncSession) -> list[dict]:
        orders = await OrderRepository(db_session).recent(50)
        out = []
        for order in orders:
            customer = await db_session.get(Customer, order.customer_id)  # expect: SLP201
            out.append({"id": order.id, "email": customer.email, "tier": customer.tier})
        return out
