import pandas as pd
import requests as rq

API = "https://crm.example.com/api/v2"


def make_session(token: str) -> rq.Session:
    s = rq.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    return s


def fetch_all(session: rq.Session, endpoint: str) -> pd.DataFrame:
    rows: list[dict] = []
    url: str | None = f"{API}/{endpoint}"
    while url:
        resp = session.get(url, timeout=30)  # ok: SLP201 pagination in a while loop
        resp.raise_for_status()
        body = resp.json()
        rows.extend(body["data"])
        url = body.get("next")
    return pd.DataFrame(rows)


def download(url: str, token: str) -> bytes:
    with make_session(token) as s:
        return s.get(url, timeout=60).content
