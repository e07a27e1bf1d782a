import json
from pathlib import Path

OVERRIDES_FILE = Path(__file__).with_name("overrides.json")


def load_overrides() -> dict[str, str]:
    with open(OVERRIDES_FILE) as fh:
        return json.load(fh)


def apply_overrides(prices: dict[str, float]) -> dict[str, float]:
    overrides = load_overrides()
    return {sku: float(overrides.get(sku, price)) for sku, price in prices.items()}
