import sqlite3


class Warehouse:
    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA journal_mode=WAL")

    def upsert_customer(self, cid: int, name: str, country: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO customers (id, name, country) VALUES (?, ?, ?)", (cid, name, country)
        )

    def customer_exists(self, cid: int) -> bool:
        cur = self.conn.execute("SELECT 1 FROM customers WHERE id = ?", (cid,))
        return cur.fetchone() is not None

    def known_customers(self) -> set[int]:
        return {row[0] for row in self.conn.execute("SELECT id FROM customers")}

    def insert_orders(self, rows: list[tuple]) -> None:
        self.conn.executemany("INSERT INTO orders (id, customer_id, amount) VALUES (?, ?, ?)", rows)

    def save_attachment(self, order_id: int, blob: bytes) -> None:
        self.conn.execute("INSERT INTO attachments (order_id, data) VALUES (?, ?)", (order_id, blob))
        self.conn.commit()

    def commit(self) -> None:
        self.conn.commit()
