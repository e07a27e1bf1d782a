import argparse
import json
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from etl.http import fetch, fresh_client
from etl.parse import clean_titles, parse_listing, parse_product
from etl.store import already_seen, connect, save_item, save_items, seen_urls

log = logging.getLogger("etl")


def load_sources() -> list[dict]:
    with open("sources.yaml") as fh:
        return yaml.safe_load(fh)["sources"]


def crawl_source(conn: sqlite3.Connection, source: dict) -> int:
    listing = fetch(source["listing_url"])
    urls = [u for u in parse_listing(listing, source["base"]) if not already_seen(conn, u)]  # expect: SLP201
    with ThreadPoolExecutor(max_workers=4) as pool:
        pages = list(pool.map(fetch, urls))
    count = 0
    for url, html in zip(urls, pages):
        item = parse_product(html, url, source["name"])
        save_item(conn, item)  # expect: SLP202, SLP203
        count += 1
    return count


def crawl_source_batched(conn: sqlite3.Connection, source: dict) -> int:
    listing = fetch(source["listing_url"])
    seen = seen_urls(conn)
    urls = [u for u in parse_listing(listing, source["base"]) if u not in seen]
    with ThreadPoolExecutor(max_workers=8) as pool:
        pages = list(pool.map(fetch, urls))
    items = [parse_product(html, url, source["name"]) for html, url in zip(pages, urls)]
    clean_titles(items)
    save_items(conn, items)
    return len(items)


def refresh_prices(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT url, source FROM item WHERE price IS NULL").fetchall()
    for url, source in rows:
        with fresh_client() as client:  # expect: SLP101
            html = client.get(url).text
        item = parse_product(html, url, source)
        conn.execute("UPDATE item SET price = ? WHERE url = ?", (item["price"], url))  # expect: SLP202
    conn.commit()


def export_by_source(conn: sqlite3.Connection, out_dir: Path) -> None:
    sources = [r[0] for r in conn.execute("SELECT DISTINCT source FROM item")]
    for source in sources:
        settings = json.loads(Path("export.json").read_text())  # expect: SLP103
        rows = conn.execute(  # expect: SLP201
            "SELECT url, title, price FROM item WHERE source = ?", (source,)
        ).fetchall()
        limit = settings.get("max_rows", 1000)
        (out_dir / f"{source}.json").write_text(json.dumps(rows[:limit]))


def titles_for(conn: sqlite3.Connection, ids: list[int]) -> list[str]:
    return [conn.execute("SELECT title FROM item WHERE id = ?", (i,)).fetchone()[0] for i in ids]  # expect: SLP201


def dump_all(conn: sqlite3.Connection) -> list[tuple]:
    out = []
    for row in conn.execute("SELECT url, title, price FROM item ORDER BY id"):  # ok: SLP201 the query is the loop's iterable, run once
        out.append(tuple(row))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batched", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("out"))
    args = parser.parse_args()
    conn = connect()
    for source in load_sources():
        crawl = crawl_source_batched if args.batched else crawl_source
        log.info("%s: %d new items", source["name"], crawl(conn, source))
    refresh_prices(conn)
    export_by_source(conn, args.out)


if __name__ == "__main__":
    main()
