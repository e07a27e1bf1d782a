from gateway.upstream import quote

_fx_cache: dict[str, dict] = {}  # expect: SLP501
_symbol_meta: dict[str, dict] = {}  # ok: SLP501 cleared when it reaches 1000 entries


async def fx(base: str) -> dict:
    if base not in _fx_cache:  # expect: SLP503
        _fx_cache[base] = await quote(base)
    return _fx_cache[base]


def remember_meta(symbol: str, meta: dict) -> None:
    if len(_symbol_meta) >= 1000:
        _symbol_meta.clear()
    _symbol_meta[symbol] = meta


def meta_for(symbol: str) -> dict | None:
    return _symbol_meta.get(symbol)
