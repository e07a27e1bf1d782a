import re

from fastapi import APIRouter, Depends
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_db
from app.models import Product
from app.repositories import ProductRepository
from app.schemas import ProductIn, ProductOut
from app.services.pricing import apply_overrides, load_overrides

router = APIRouter(prefix="/products", tags=["catalog"])

SKU_RE = re.compile(r"^[A-Z]{3}-\d{4}$")


@router.post("/import")
async def import_products(rows: list[ProductIn], db: AsyncSession = Depends(get_db)):
    repo = ProductRepository(db)
    created = 0
    for row in rows:
        if not SKU_RE.match(row.sku):
            continue
        existing = await repo.by_sku(row.sku)  # expect: SLP201
        if existing is not None:
            existing.price = row.price
        else:
            db.add(Product(**row.model_dump()))  # ok: SLP202 session.add makes no round trip
            created += 1
        await db.commit()  # expect: SLP203
    return {"created": created}


@router.post("/import-fast")
async def import_products_fast(rows: list[ProductIn], db: AsyncSession = Depends(get_db)):
    db.add_all([Product(**row.model_dump()) for row in rows])  # ok: SLP202 add_all is not a write
    await db.commit()
    return {"created": len(rows)}


@router.get("/prices")
async def prices(db: AsyncSession = Depends(get_db)):
    rows = await db.execute(select(Product.sku, Product.price))
    base = {sku: float(price) for sku, price in rows}
    return apply_overrides(base)  # expect: SLP401


@router.get("/overrides")
def overrides():
    # a sync handler runs in FastAPI's threadpool, so the file read does not block the loop
    return load_overrides()  # ok: SLP401 sync def handler


@router.get("/stats")
async def stats(db: AsyncSession = Depends(get_db)):
    count = await db.scalar(select(func.count(Product.id)))
    low = await db.scalars(select(Product).where(Product.stock < 5))
    return {"count": count, "low_stock": [ProductOut.model_validate(p) for p in low]}


@router.get("/search")
async def search(terms: str, db: AsyncSession = Depends(get_db)):
    patterns = []
    for term in terms.split():
        patterns.append(re.compile(re.escape(term), re.I))  # ok: SLP103 depends on the loop item
    rows = await db.scalars(select(Product).limit(500))
    return [p.name for p in rows if all(pat.search(p.name) for pat in patterns)]
