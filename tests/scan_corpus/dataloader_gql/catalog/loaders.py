"""Per-request loaders: slipstream's, aiodataloader's (subclassed) and strawberry's."""

import asyncpg
from aiodataloader import DataLoader
from strawberry.dataloader import DataLoader as StrawberryLoader

import slipstream as ss


class SupplierLoader(DataLoader):
    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__()
        self.pool = pool

    async def batch_load_fn(self, ids):
        rows = await self.pool.fetch("SELECT * FROM supplier WHERE id = ANY($1)", ids)
        found = {r["id"]: r for r in rows}
        return [found.get(i) for i in ids]


class Loaders:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.products = ss.DataLoader(self.products_by_id, batch_size=500)
        self.suppliers = SupplierLoader(pool)
        self.stock = StrawberryLoader(load_fn=self.stock_by_sku)

    async def products_by_id(self, ids: list[int]) -> dict[int, asyncpg.Record]:
        rows = await self.pool.fetch("SELECT * FROM product WHERE id = ANY($1)", ids)
        return {r["id"]: r for r in rows}

    async def stock_by_sku(self, skus: list[str]) -> list[int]:
        rows = await self.pool.fetch("SELECT sku, qty FROM stock WHERE sku = ANY($1)", skus)
        qty = {r["sku"]: r["qty"] for r in rows}
        return [qty.get(s, 0) for s in skus]


class Shelf:
    """Not a DataLoader: load() reads a dict already in memory."""

    def __init__(self) -> None:
        self.items: dict[int, str] = {}

    async def load(self, key: int) -> str:
        return self.items[key]
