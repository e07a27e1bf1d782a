from typing import Generic, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shop.models import Base, Customer, Order, OrderLine, Product

M = TypeVar("M", bound=Base)


class Repository(Generic[M]):
    model: type[M]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, pk: int) -> M | None:
        return await self.session.get(self.model, pk)

    async def many(self, ids: list[int]) -> list[M]:
        result = await self.session.scalars(select(self.model).where(self.model.id.in_(ids)))
        return list(result)

    async def add(self, obj: M) -> M:
        self.session.add(obj)
        await self.session.flush()
        return obj


class ProductRepository(Repository[Product]):
    model = Product

    async def by_sku(self, sku: str) -> Product | None:
        return await self.session.scalar(select(Product).where(Product.sku == sku))

    async def reserve(self, product_id: int, qty: int) -> None:
        await self.session.execute(
            update(Product).where(Product.id == product_id).values(stock=Product.stock - qty)
        )


class CustomerRepository(Repository[Customer]):
    model = Customer


class OrderRepository(Repository[Order]):
    model = Order

    async def recent(self, limit: int = 100) -> list[Order]:
        rows = await self.session.scalars(select(Order).order_by(Order.created_at.desc()).limit(limit))
        return list(rows)

    async def lines_of(self, order_id: int) -> list[OrderLine]:
        rows = await self.session.scalars(select(OrderLine).where(OrderLine.order_id == order_id))
        return list(rows)
