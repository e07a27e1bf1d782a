"""Normalise post tags into a tags table (sqlite3)."""

import re
import sqlite3
import sys

DB_PATH = "blog.sqlite3"
SPLIT_RE = re.compile(r"[,;]\s*")


def migrate(db_path: str = DB_PATH) -> int:
    conn = sqlite3.connect(db_path)
    cur = conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    moved = 0
    for post_id, raw in cur.execute("SELECT id, tags FROM posts").fetchall():  # ok: SLP201 the iterable runs once
        for (tag_id,) in cur.execute("SELECT tag_id FROM post_tags WHERE post_id = ?", (post_id,)).fetchall():  # expect: SLP201
            cur.execute("DELETE FROM post_tags WHERE tag_id = ? AND post_id = ?", (tag_id, post_id))  # expect: SLP202
        for tag in SPLIT_RE.split(raw or ""):
            row = cur.execute("SELECT id FROM tags WHERE name = ?", (tag,)).fetchone()  # expect: SLP201
            if row is None:
                cur.execute("INSERT INTO tags(name) VALUES (?)", (tag,))  # expect: SLP202
                moved += 1
        conn.commit()  # expect: SLP203
    return moved


def migrate_fast(db_path: str = DB_PATH) -> int:
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT id, tags FROM posts").fetchall()
    names = sorted({t for _, raw in rows for t in SPLIT_RE.split(raw or "") if t})
    conn.executemany("INSERT OR IGNORE INTO tags(name) VALUES (?)", [(n,) for n in names])  # ok: SLP202
    ids = dict(conn.execute("SELECT name, id FROM tags").fetchall())
    links = []
    for post_id, raw in rows:
        for tag in SPLIT_RE.split(raw or ""):
            if tag in ids:
                links.append((post_id, ids.get(tag)))  # ok: SLP201 a dict
    conn.executemany("INSERT INTO post_tags(post_id, tag_id) VALUES (?, ?)", links)
    conn.commit()  # ok: SLP203 once, after the loops
    return len(links)


def vacuum_with_retry(db_path: str = DB_PATH) -> None:
    for attempt in range(5):
        try:
            conn = sqlite3.connect(db_path, timeout=1)
            conn.execute("VACUUM")  # ok: SLP202 retry loop, not per item
            conn.commit()  # ok: SLP203 retry loop
            return
        except sqlite3.OperationalError:
            continue


if __name__ == "__main__":
    print(migrate(sys.argv[1] if len(sys.argv) > 1 else DB_PATH))
