import requests

FX_URL = "https://fx.example/v1/rates"

_tables: dict[str, dict[str, float]] = {}  # expect: SLP501


def rate_table(quote: str) -> dict[str, float]:
    """Rates of every currency into `quote`, fetched once per quote currency."""
    if quote not in _tables:
        resp = requests.get(FX_URL, params={"quote": quote}, timeout=5)
        resp.raise_for_status()
        _tables[quote] = resp.json()["rates"]
    return _tables[quote]
