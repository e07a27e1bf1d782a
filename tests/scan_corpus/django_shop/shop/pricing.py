from decimal import Decimal

import requests

_price_cache = {}  # expect: SLP501
_CURRENCY_NAMES = {"EUR": "Euro", "USD": "US dollar", "GBP": "Pound sterling"}  # ok: SLP501 read only
_rates = {}  # ok: SLP501 evicted below


def price_for(sku: str) -> Decimal:
    if sku in _price_cache:
        return _price_cache[sku]
    response = requests.get(f"https://pricing.internal/sku/{sku}", timeout=3)
    price = Decimal(response.json()["price"])
    _price_cache[sku] = price
    return price


def currency_name(code: str) -> str:
    return _CURRENCY_NAMES.get(code, code)


def rate(code: str) -> Decimal:
    if code not in _rates:
        _rates[code] = Decimal(requests.get(f"https://fx.internal/{code}", timeout=3).text)
    return _rates[code]


def on_rates_published() -> None:
    _rates.clear()
