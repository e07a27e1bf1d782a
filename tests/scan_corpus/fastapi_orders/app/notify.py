from pathlib import Path

import httpx

TEMPLATE_PATH = Path(__file__).parent / "templates" / "shipped.txt"


def _read_template() -> str:
    return TEMPLATE_PATH.read_text(encoding="utf-8")


def render_email(order_id: int, email: str) -> str:
    return _read_template().format(order_id=order_id, email=email)


async def send_webhook(client: httpx.AsyncClient, url: str, payload: dict) -> int:
    response = await client.post(url, json=payload)
    return response.status_code


def describe(payload: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(payload.items()))
