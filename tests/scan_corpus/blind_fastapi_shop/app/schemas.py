from decimal import Decimal

from pydantic import BaseModel


class LineIn(BaseModel):
    product_id: int
    qty: int


class OrderIn(BaseModel):
    customer_id: int
    items: list[LineIn]


class ProductIn(BaseModel):
    sku: str
    name: str
    price: Decimal
    stock: int = 0


class ProductOut(ProductIn):
    id: int
    model_config = {"from_attributes": True}
