import asyncio

from slipstream import DataLoader

from catalog.loaders import Loaders, Shelf


async def order_lines(loaders: Loaders, lines: list[dict]) -> list[dict]:
    out = []
    for line in lines:
        product = await loaders.products.load(line["product_id"])  # expect: SLP301
        out.append({"line": line, "product": product})
    return out


async def suppliers_of(loaders: Loaders, products: list[dict]) -> list[object]:
    found = []
    for product in products:
        found.append(await loaders.suppliers.load(product["supplier_id"]))  # expect: SLP301
    return found


async def stock_levels(loaders: Loaders, skus: list[str]) -> dict[str, int]:
    levels = {}
    for sku in skus:
        levels[sku] = await loaders.stock.load(sku)  # expect: SLP301
    return levels


async def labels(people: DataLoader, user_ids: list[int]) -> list[str]:
    names = []
    for user_id in user_ids:
        person = await people.load(user_id)  # expect: SLP301
        names.append(person["name"])
    return names


async def product_of(loaders: Loaders, line: dict) -> dict:
    return await loaders.products.load(line["product_id"])


async def invoice(loaders: Loaders, lines: list[dict]) -> float:
    total = 0.0
    for line in lines:
        product = await product_of(loaders, line)  # expect: SLP301
        total += product["price"] * line["qty"]
    return total


# -- the same lookups done right, and loops that only look like the pattern ------------------


async def order_lines_batched(loaders: Loaders, lines: list[dict]) -> list[dict]:
    products = await loaders.products.load_many([ln["product_id"] for ln in lines])
    return [{"line": ln, "product": p} for ln, p in zip(lines, products)]


async def suppliers_gathered(loaders: Loaders, products: list[dict]) -> list[object]:
    pending = []
    for product in products:
        pending.append(loaders.suppliers.load(product["supplier_id"]))  # ok: SLP301 not awaited here
    return await asyncio.gather(*pending)  # ok: SLP302 loads make one batch, not one call each


async def products_gathered(loaders: Loaders, ids: list[int]) -> list[object]:
    return await asyncio.gather(*(loaders.products.load(i) for i in ids))  # ok: SLP302 one batch


async def pages_of_products(loaders: Loaders, pages: list[list[int]]) -> list[object]:
    found = []
    for page in pages:
        found.extend(await loaders.products.load_many(page))  # ok: SLP301 one batch per page
    return found


async def category_path(loaders: Loaders, product: dict, max_depth: int) -> list[dict]:
    path = []
    node = product
    for _ in range(max_depth):
        if node["parent_id"] is None:
            break
        node = await loaders.products.load(node["parent_id"])  # ok: SLP301 each key comes from the last row
        path.append(node)
    return path


async def shelf_labels(shelf: Shelf, keys: list[int]) -> list[str]:
    out = []
    for key in keys:
        out.append(await shelf.load(key))  # ok: SLP301 an in-memory load, not a DataLoader
    return out


async def two_stock_levels(loaders: Loaders) -> list[int]:
    levels = []
    for sku in ("A-1", "B-2"):
        levels.append(await loaders.stock.load(sku))  # ok: SLP301 two fixed keys
    return levels
