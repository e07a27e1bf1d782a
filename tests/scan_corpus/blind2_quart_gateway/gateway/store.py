import sqlite3
from contextlib import closing

DB_PATH = "/var/lib/gateway/quotes.db"


def _connect() -> sqlite3.Connection:
    conn = sqlite3.connect(DB_PATH)
    conn.row_factory = sqlite3.Row
    return conn


def history(symbol: str, limit: int = 500) -> list[dict]:
    with closing(_connect()) as conn:
        rows = conn.execute(
            "SELECT ts, price FROM quote WHERE symbol = ? ORDER BY ts DESC LIMIT ?", (symbol, limit)
        ).fetchall()
    return [dict(r) for r in rows]


def record(symbol: str, price: float) -> None:
    with closing(_connect()) as conn:
        conn.execute("INSERT INTO quote (symbol, price) VALUES (?, ?)", (symbol, price))
        conn.commit()


def dump_all() -> list[dict]:
    with closing(_connect()) as conn:
        return [dict(r) for r in conn.execute("SELECT * FROM quote")]
