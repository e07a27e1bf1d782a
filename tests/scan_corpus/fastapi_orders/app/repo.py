from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Order, Product, User, Webhook


async def get_user(db: AsyncSession, user_id: int) -> User | None:
    return await db.get(User, user_id)


async def product_by_sku(db: AsyncSession, sku: str) -> Product | None:
    result = await db.execute(select(Product).where(Product.sku == sku))
    return result.scalar_one_or_none()


async def products_by_skus(db: AsyncSession, skus: list[str]) -> dict[str, Product]:
    rows = await db.scalars(select(Product).where(Product.sku.in_(skus)))
    return {p.sku: p for p in rows}


async def mark_shipped(db: AsyncSession, order_id: int) -> None:
    await db.execute(update(Order).where(Order.id == order_id).values(status="shipped"))


async def save_order(db: AsyncSession, order: Order) -> Order:
    db.add(order)
    await db.commit()
    return order


async def webhooks(db: AsyncSession) -> list[Webhook]:
    return list(await db.scalars(select(Webhook)))
