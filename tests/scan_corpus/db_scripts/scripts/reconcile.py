"""Reconcile payments against the ledger (psycopg 3 and psycopg2)."""

import json

import jsonschema
import psycopg
import psycopg2
from jsonschema import Draft202012Validator

DSN = "postgresql://ledger@db/ledger"
PAYMENT_SCHEMA = {"type": "object", "required": ["id", "amount"]}


def build_query(table: str) -> str:
    return f"SELECT balance FROM {table} WHERE account_id = %s"


def reconcile(payments: list[dict]) -> list[int]:
    mismatched = []
    sql = build_query("ledger")
    with psycopg.connect(DSN) as conn:
        with conn.cursor() as cur:
            for payment in payments:
                validator = Draft202012Validator(PAYMENT_SCHEMA)  # expect: SLP103
                validator.validate(payment)
                cur.execute(sql, (payment["account_id"],))  # expect: SLP201
                (balance,) = cur.fetchone()  # ok: SLP201 reads the result already fetched
                if balance != payment["amount"]:
                    mismatched.append(payment["id"])
                    cur.execute("UPDATE payments SET flagged = true WHERE id = %s", (payment["id"],))  # expect: SLP202
        conn.commit()  # ok: SLP203 after the loop
    return mismatched


def load_payments(lines: list[str]) -> list[dict]:
    validator = Draft202012Validator(PAYMENT_SCHEMA)
    out = []
    for line in lines:
        doc = json.loads(line)  # ok: SLP103 depends on the loop variable
        validator.validate(doc)  # ok: SLP103 validator built before the loop
        out.append(doc)
    return out


def validate_each(docs: list[dict], schemas: list[dict]) -> None:
    for doc, schema in zip(docs, schemas):
        jsonschema.validate(doc, schema)  # ok: SLP103 schema changes every iteration


def archive(ids: list[int]) -> None:
    conn = psycopg2.connect(DSN)
    cur = conn.cursor()
    for pid in ids:
        cur.execute("INSERT INTO payments_archive SELECT * FROM payments WHERE id = %s", (pid,))  # expect: SLP202  # ok: SLP201 an INSERT (first keyword)
        conn.commit()  # expect: SLP203
    cur.close()
    conn.close()
