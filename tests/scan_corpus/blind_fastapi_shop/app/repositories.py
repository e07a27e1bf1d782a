from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.models import Customer, Order, Product


class ProductRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, product_id: int) -> Product | None:
        return await self.session.get(Product, product_id)

    async def by_ids(self, ids: list[int]) -> dict[int, Product]:
        rows = await self.session.scalars(select(Product).where(Product.id.in_(ids)))
        return {p.id: p for p in rows}

    async def by_sku(self, sku: str) -> Product | None:
        return await self.session.scalar(select(Product).where(Product.sku == sku))

    async def decrement_stock(self, product_id: int, qty: int) -> None:
        await self.session.execute(
            update(Product).where(Product.id == product_id).values(stock=Product.stock - qty)
        )


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def save(self, order: Order) -> Order:
        self.session.add(order)
        await self.session.commit()
        await self.session.refresh(order)
        return order

    async def for_customer(self, customer_id: int) -> list[Order]:
        stmt = (
            select(Order)
            .where(Order.customer_id == customer_id)
            .options(selectinload(Order.items))
        )
        return list(await self.session.scalars(stmt))

    async def customer(self, customer_id: int) -> Customer | None:
        return await self.session.get(Customer, customer_id)
