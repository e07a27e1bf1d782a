"""Nightly backfill: sync pymongo, run from cron."""
import csv
import sys

from pymongo import MongoClient, UpdateOne

from svc.db import MONGO_URL


def backfill_prices(path: str) -> None:
    products = MongoClient(MONGO_URL)["shop"]["products"]
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            products.update_one({"sku": row["sku"]}, {"$set": {"price": float(row["price"])}})  # expect: SLP202


def backfill_prices_bulk(path: str) -> None:
    products = MongoClient(MONGO_URL)["shop"]["products"]
    with open(path, newline="") as fh:
        ops = [
            UpdateOne({"sku": row["sku"]}, {"$set": {"price": float(row["price"])}})
            for row in csv.DictReader(fh)
        ]
    products.bulk_write(ops, ordered=False)


def missing_skus(skus: list[str]) -> list[str]:
    products = MongoClient(MONGO_URL).shop.products
    return [s for s in skus if products.find_one({"sku": s}, {"_id": 1}) is None]  # expect: SLP201


if __name__ == "__main__":
    backfill_prices(sys.argv[1])
