"""A valid module next to files that do not parse: it must still be scanned."""

import sqlite3


def import_rows(rows: list[tuple[str, int]]) -> None:
    conn = sqlite3.connect("inventory.sqlite3")
    for name, qty in rows:
        conn.execute("INSERT INTO items(name, qty) VALUES (?, ?)", (name, qty))  # expect: SLP202
        conn.commit()  # expect: SLP203
