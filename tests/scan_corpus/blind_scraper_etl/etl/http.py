from functools import lru_cache

import httpx
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

USER_AGENT = "etl-bot/1.4 (+https://example.org/bot)"


@lru_cache(maxsize=1)
def session() -> requests.Session:
    s = requests.Session()
    s.headers["User-Agent"] = USER_AGENT
    s.mount("https://", HTTPAdapter(max_retries=Retry(total=3, backoff_factor=0.5)))
    return s


def fresh_client() -> httpx.Client:
    return httpx.Client(headers={"User-Agent": USER_AGENT}, timeout=10.0, follow_redirects=True)


def fetch(url: str) -> str:
    response = session().get(url, timeout=10)
    response.raise_for_status()
    return response.text
