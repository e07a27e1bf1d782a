import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS item (
    id INTEGER PRIMARY KEY,
    url TEXT UNIQUE,
    title TEXT,
    price REAL,
    source TEXT
);
CREATE TABLE IF NOT EXISTS seen (url TEXT PRIMARY KEY);
"""


def connect(path: str = "etl.db") -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    return conn


def save_item(conn: sqlite3.Connection, item: dict) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO item (url, title, price, source) VALUES (?, ?, ?, ?)",
        (item["url"], item["title"], item["price"], item["source"]),
    )
    conn.commit()


def save_items(conn: sqlite3.Connection, items: list[dict]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO item (url, title, price, source) VALUES (?, ?, ?, ?)",
        [(i["url"], i["title"], i["price"], i["source"]) for i in items],
    )
    conn.commit()


def already_seen(conn: sqlite3.Connection, url: str) -> bool:
    cur = conn.execute("SELECT 1 FROM seen WHERE url = ?", (url,))
    return cur.fetchone() is not None


def seen_urls(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT url FROM seen")}
