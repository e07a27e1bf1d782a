import psycopg2
import requests

from jobs.config import PG_DSN


def send_digests(user_ids: list[int]) -> None:
    conn = psycopg2.connect(PG_DSN)
    cur = conn.cursor()
    for uid in user_ids:
        cur.execute("SELECT email, name FROM users WHERE id = %s", (uid,))  # expect: SLP201
        email, name = cur.fetchone()
        with requests.Session() as http:  # expect: SLP101
            http.post("https://mail.internal/send", json={"to": email, "name": name}, timeout=5)
        cur.execute("INSERT INTO digest_log (user_id) VALUES (%s)", (uid,))  # expect: SLP202
        conn.commit()  # expect: SLP203
    conn.close()


def mark_seen(user_ids: list[int]) -> None:
    conn = psycopg2.connect(PG_DSN)
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE users SET seen = true WHERE id = ANY(%s)", (user_ids,))  # ok: SLP202 one statement
    conn.close()
