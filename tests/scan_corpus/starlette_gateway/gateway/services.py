import time

import requests

from gateway.util import fetch_legacy as legacy_fetch
from gateway.util import normalise


def enrich_user(uid: int) -> dict:
    return normalise(legacy_fetch(f"/users/{uid}"))


def backoff(attempt: int) -> None:
    time.sleep(0.1 * 2**attempt)


class LegacyClient:
    def __init__(self) -> None:
        self._session = requests.Session()

    def get(self, path: str) -> dict:
        return self._session.get("https://legacy.internal" + path, timeout=5).json()

    def label(self, path: str) -> str:
        return path.strip("/").replace("/", ".")
