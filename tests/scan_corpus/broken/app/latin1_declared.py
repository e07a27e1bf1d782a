# -*- coding: latin-1 -*-
"""Valid: latin-1 with a cookie."""
import sqlite3

TITLE = "Résumé"


def store(names):
    conn = sqlite3.connect("r.db")
    for n in names:
        conn.execute("INSERT INTO t(name) VALUES (?)", (n,))  # expect: SLP202
    conn.commit()
