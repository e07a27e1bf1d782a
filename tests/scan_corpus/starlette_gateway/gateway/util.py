import urllib.request

import requests

LEGACY_BASE = "https://legacy.internal/api"


def _get(path: str) -> dict:
    return requests.get(LEGACY_BASE + path, timeout=5).json()


def fetch_legacy(path: str) -> dict:
    return _get(path)


def fetch_raw(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read()


def normalise(doc: dict) -> dict:
    return {k.lower(): v for k, v in doc.items()}
