import asyncio
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from shop.models import Order, OrderLine
from shop.repositories import CustomerRepository, OrderRepository, ProductRepository


class NotFound(Exception):
    pass


@dataclass
class LineIn:
    product_id: int
    quantity: int


class OrderService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.products = ProductRepository(session)
        self.customers = CustomerRepository(session)
        self.orders = OrderRepository(session)
        self.pinned: dict[int, int] = {}

    async def place(self, customer_id: int, items: list[LineIn]) -> Order:
        customer = await self.customers.get(customer_id)
        if customer is None:
            raise NotFound(customer_id)
        order = Order(customer_id=customer.id)
        self.session.add(order)
        for item in items:
            product = await self.products.get(item.product_id)  # expect: SLP201
            if product is None:
                raise NotFound(item.product_id)
            await self.products.reserve(product.id, item.quantity)  # expect: SLP202
            order.lines.append(  # ok: SLP202 relationship append, flushed once at commit
                OrderLine(product_id=product.id, quantity=item.quantity, unit_price=product.price)
            )
        await self.session.commit()
        return order

    async def place_prefetched(self, customer_id: int, items: list[LineIn]) -> Order:
        wanted = [item.product_id for item in items]
        products = {p.id: p for p in await self.products.many(wanted)}  # ok: SLP201 one IN query
        order = Order(customer_id=customer_id)
        for item in items:
            product = products[item.product_id]
            self.session.add(  # ok: SLP202 session.add makes no round trip
                OrderLine(order=order, product_id=product.id, quantity=item.quantity, unit_price=product.price)
            )
        await self.session.commit()
        return order

    async def import_skus(self, order: Order, rows: list[tuple[str, int]]) -> None:
        for sku, qty in rows:
            product = await self.products.by_sku(sku)  # expect: SLP201
            await self.orders.add(  # expect: SLP202
                OrderLine(order_id=order.id, product_id=product.id, quantity=qty, unit_price=product.price)
            )
        await self.session.commit()

    async def first_pinned(self, product_ids: list[int]):
        for pid in product_ids:
            if pid in self.pinned:
                return await self.products.get(pid)  # ok: SLP201 branch returns, runs once
        return None

    async def commit_with_retry(self) -> None:
        for attempt in range(3):
            try:
                await self.session.commit()  # ok: SLP203 retry loop
                return
            except OperationalError:
                await asyncio.sleep(0.1 * 2**attempt)
        raise RuntimeError("commit failed")

    async def restock(self, counts: dict[int, int]) -> None:
        for product_id, qty in counts.items():
            await self.products.reserve(product_id, -qty)  # expect: SLP202
            await self.session.commit()  # expect: SLP203
