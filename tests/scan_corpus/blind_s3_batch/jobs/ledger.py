import csv
import json
import sys
from decimal import Decimal

import boto3
from boto3.dynamodb.conditions import Key

from jobs.aws import dynamo_table, s3_client

TABLE = "ledger"


def load_rows(bucket: str, key: str) -> list[dict]:
    body = s3_client().get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return list(csv.DictReader(body.splitlines()))


def import_ledger(bucket: str, key: str) -> int:
    table = boto3.resource("dynamodb").Table(TABLE)
    rows = load_rows(bucket, key)
    for row in rows:
        existing = table.get_item(Key={"account": row["account"], "txn": row["txn"]})  # expect: SLP201
        if "Item" in existing:
            continue
        table.put_item(Item={**row, "amount": Decimal(row["amount"])})  # expect: SLP202
    return len(rows)


def import_ledger_batched(bucket: str, key: str) -> int:
    table = dynamo_table(TABLE)
    rows = load_rows(bucket, key)
    with table.batch_writer(overwrite_by_pkeys=["account", "txn"]) as batch:
        for row in rows:
            batch.put_item(Item={**row, "amount": Decimal(row["amount"])})  # ok: SLP202 buffered by batch_writer (25 per request)
    return len(rows)


def balances(accounts: list[str]) -> dict[str, Decimal]:
    table = dynamo_table(TABLE)
    out = {}
    for account in accounts:
        resp = table.query(KeyConditionExpression=Key("account").eq(account))  # expect: SLP201
        out[account] = sum(Decimal(i["amount"]) for i in resp["Items"])
    return out


def settings_for(accounts: list[str]) -> dict[str, dict]:
    out = {}
    for account in accounts:
        cfg = json.load(open("ledger_settings.json"))  # expect: SLP103
        out[account] = cfg.get(account, cfg["default"])
    return out


if __name__ == "__main__":
    print(import_ledger(sys.argv[1], sys.argv[2]))
