import asyncio

import httpx
from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import settings
from app.db import get_db
from app.models import Order, OrderItem
from app.repositories import OrderRepository, ProductRepository
from app.schemas import OrderIn
from app.services.rates import latest_rates, rate_for, rates_client

router = APIRouter(prefix="/orders", tags=["orders"])


def product_repo(db: AsyncSession = Depends(get_db)) -> ProductRepository:
    return ProductRepository(db)


mailer = httpx.AsyncClient(base_url="https://mail.example", timeout=10.0)


async def send_receipt(order_id: int) -> None:
    await mailer.post("/send", json={"order": order_id})


@router.post("/")
async def create_order(
    payload: OrderIn,
    background: BackgroundTasks,
    db: AsyncSession = Depends(get_db),
):
    products = ProductRepository(db)
    orders = OrderRepository(db)
    order = Order(customer_id=payload.customer_id)
    for line in payload.items:
        product = await products.get(line.product_id)  # expect: SLP201
        if product is None:
            raise HTTPException(status_code=404, detail=f"no product {line.product_id}")
        order.items.append(OrderItem(product_id=product.id, qty=line.qty, price=product.price))
        await products.decrement_stock(product.id, line.qty)  # expect: SLP202
    order = await orders.save(order)

    async with httpx.AsyncClient(base_url=settings.payments_url) as payments:  # expect: SLP102
        response = await payments.post(
            "/charges",
            json={"order": order.id, "amount": str(sum(i.price * i.qty for i in order.items))},
            headers={"Authorization": f"Bearer {settings.payments_key}"},
        )
    response.raise_for_status()
    background.add_task(send_receipt, order.id)
    return {"id": order.id}


@router.post("/quote")
async def quote(payload: OrderIn, products: ProductRepository = Depends(product_repo)):
    # one IN query for every product of the order
    found = await products.by_ids([line.product_id for line in payload.items])
    total = sum(found[line.product_id].price * line.qty for line in payload.items)
    rates = await latest_rates()
    return {"EUR": total, "USD": float(total) * rates["USD"]}


@router.get("/convert")
async def convert(amount: float, currencies: str):
    client = rates_client()  # ok: SLP102 memoised behind a global guard
    converted = {}
    for currency in currencies.split(","):
        converted[currency] = amount * await rate_for(currency)  # expect: SLP301
    health = await client.get("/health")
    return {"converted": converted, "rates_up": health.is_success}


@router.get("/convert-all")
async def convert_all(amount: float, currencies: str):
    codes = currencies.split(",")
    values = await asyncio.gather(*[rate_for(code) for code in codes])  # expect: SLP302
    return {code: amount * value for code, value in zip(codes, values)}


@router.get("/customer/{customer_id}")
async def customer_orders(customer_id: int, db: AsyncSession = Depends(get_db)):
    orders = OrderRepository(db)
    customer, history = await asyncio.gather(  # ok: SLP302 fixed arity
        orders.customer(customer_id), orders.for_customer(customer_id)
    )
    if customer is None:
        raise HTTPException(status_code=404)
    return {
        "email": customer.email,
        "orders": [{"id": o.id, "lines": len(o.items)} for o in history],
    }
