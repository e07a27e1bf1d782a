import re

from bs4 import BeautifulSoup

PRICE_RE = re.compile(r"(\d+[.,]\d{2})")


def parse_listing(html: str, base: str) -> list[str]:
    soup = BeautifulSoup(html, "html.parser")
    return [base + a["href"] for a in soup.select("a.product")]


def parse_product(html: str, url: str, source: str) -> dict:
    soup = BeautifulSoup(html, "html.parser")
    title = soup.select_one("h1").get_text(strip=True)
    price_text = soup.select_one(".price").get_text()
    match = PRICE_RE.search(price_text)
    price = float(match.group(1).replace(",", ".")) if match else None
    return {"url": url, "title": title, "price": price, "source": source}


def clean_titles(items: list[dict]) -> None:
    for item in items:
        item["title"] = re.sub(r"\s+", " ", item["title"]).strip()  # ok: SLP103 re.sub uses re's internal pattern cache
