"""Module- and class-level dicts: which are unbounded caches and which are not."""

import time
from collections import OrderedDict, defaultdict
from functools import lru_cache

import httpx
from cachetools import TTLCache

_user_cache = {}  # expect: SLP501
_hits = defaultdict(int)  # expect: SLP501
_recent = OrderedDict()  # expect: SLP501
_geo_memo: dict[tuple[float, float], str] = dict()  # expect: SLP501
_sessions = {}  # ok: SLP501 popped on logout
_small = {}  # ok: SLP501 size check
_tiles = {}  # ok: SLP501 reset by reassignment
STATS = {"hits": 0, "misses": 0}  # ok: SLP501 constant keys
HANDLERS = {}  # ok: SLP501 a registry filled at import time
_BY_CODE = {}  # ok: SLP501 filled once at import
_ttl = TTLCache(maxsize=10_000, ttl=300)  # ok: SLP501 bounded by design
MAX_SMALL = 512

COUNTRIES = [("DE", "Germany"), ("FR", "France"), ("NL", "Netherlands")]
for _code, _name in COUNTRIES:
    _BY_CODE[_code] = _name


def fetch_user(uid: int) -> dict:
    return httpx.get(f"https://users.internal/{uid}", timeout=3).json()


def get_user_cached(uid: int) -> dict:
    if uid in _user_cache:
        STATS["hits"] += 1
        return _user_cache[uid]
    STATS["misses"] += 1
    user = fetch_user(uid)
    _user_cache[uid] = user
    return user


def count_hit(path: str) -> int:
    _hits[path] += 1
    return _hits[path]


def remember(event_id: str, payload: dict) -> None:
    if event_id not in _recent:
        _recent[event_id] = payload
    _recent.move_to_end(event_id)


def reverse_geocode(lat: float, lon: float) -> str:
    key = (round(lat, 4), round(lon, 4))
    name = _geo_memo.get(key)
    if name is None:
        name = httpx.get("https://geo.internal/reverse", params={"lat": lat, "lon": lon}, timeout=3).text
        _geo_memo[key] = name
    return name


def login(sid: str, user: dict) -> None:
    _sessions[sid] = {"user": user, "at": time.time()}


def current_user(sid: str) -> dict | None:
    entry = _sessions.get(sid)
    return entry["user"] if entry else None


def logout(sid: str) -> None:
    _sessions.pop(sid, None)


def small_lookup(key: str) -> str:
    if key in _small:
        return _small[key]
    if len(_small) >= MAX_SMALL:
        _small.clear()
    _small[key] = key.upper()
    return _small[key]


def tile(z: int, x: int, y: int) -> bytes:
    key = f"{z}/{x}/{y}"
    if key not in _tiles:
        _tiles[key] = httpx.get(f"https://tiles.internal/{key}.png", timeout=3).content
    return _tiles[key]


def new_style_published() -> None:
    global _tiles
    _tiles = {}


def register(name: str):
    def deco(fn):
        HANDLERS[name] = fn
        return fn

    return deco


@register("geocode")
def handle_geocode(payload: dict) -> str:
    return reverse_geocode(payload["lat"], payload["lon"])


def dispatch(kind: str, payload: dict):
    if kind in HANDLERS:
        return HANDLERS[kind](payload)
    raise KeyError(kind)


def country_name(code: str) -> str:
    return _BY_CODE.get(code, code)


def ttl_lookup(key: str) -> str:
    if key not in _ttl:
        _ttl[key] = key.lower()
    return _ttl[key]


@lru_cache(maxsize=4096)
def timezone_for(lat: float, lon: float) -> str:
    return httpx.get("https://tz.internal", params={"lat": lat, "lon": lon}, timeout=3).text


def memo_within_call(points: list[tuple[float, float]]) -> list[str]:
    seen = {}  # ok: SLP501 a local dict
    out = []
    for p in points:
        if p not in seen:
            seen[p] = timezone_for(*p)
        out.append(seen[p])
    return out


class Geocoder:
    _memo: dict[str, tuple[float, float]] = {}  # expect: SLP501
    _aliases = {"NYC": "New York", "SF": "San Francisco"}  # ok: SLP501 constant mapping

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self._seen = {}  # expect: SLP501
        self._by_id = {}  # ok: SLP501 not named like a cache
        self.cache = {}  # ok: SLP501 evicted in forget()

    def forward(self, query: str) -> tuple[float, float]:
        query = self._aliases.get(query, query)
        if query in Geocoder._memo:
            return Geocoder._memo[query]
        data = self.http.get("https://geo.internal/search", params={"q": query}).json()
        Geocoder._memo[query] = (data["lat"], data["lon"])
        return Geocoder._memo[query]

    def dedupe(self, request_id: str) -> bool:
        if request_id in self._seen:
            return False
        self._seen[request_id] = time.time()
        return True

    def add_place(self, place: dict) -> None:
        self._by_id[place["id"]] = place

    def place(self, place_id: str) -> dict | None:
        return self._by_id.get(place_id)

    def lookup(self, key: str) -> str:
        if key not in self.cache:
            self.cache[key] = key.title()
        return self.cache[key]

    def forget(self, key: str) -> None:
        del self.cache[key]
