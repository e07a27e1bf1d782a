import httpx

from shop.settings import settings

_http = httpx.AsyncClient(base_url=settings.mail_api, timeout=10)


async def send_confirmation(order_id: int, email: str) -> None:
    await _http.post("/send", json={"template": "order", "to": email, "order": order_id})
