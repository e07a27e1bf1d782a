import logging
import sys

from etl.config import load_config
from etl.extract import download, fetch_all, make_session
from etl.transform import clean_names, normalise_countries
from etl.warehouse import Warehouse

log = logging.getLogger("etl")


def load_customers(wh: Warehouse, token: str) -> None:
    session = make_session(token)
    customers = clean_names(fetch_all(session, "customers"))
    customers["country"] = normalise_countries(customers)
    for row in customers.itertuples(index=False):
        cfg = load_config()  # expect: SLP103
        if row.country in cfg["blocked_countries"]:
            continue
        wh.upsert_customer(row.id, row.name, row.country)  # expect: SLP202
        wh.commit()  # expect: SLP203


def load_orders(wh: Warehouse, token: str) -> None:
    session = make_session(token)
    orders = fetch_all(session, "orders")
    valid = []
    for order in orders.to_dict("records"):
        if not wh.customer_exists(order["customer_id"]):  # expect: SLP201
            log.warning("order %s: unknown customer", order["id"])
            continue
        valid.append((order["id"], order["customer_id"], order["amount"]))
    wh.insert_orders(valid)  # ok: SLP202 executemany after the loop
    wh.commit()  # ok: SLP203 after the loop


def load_orders_fast(wh: Warehouse, token: str) -> None:
    orders = fetch_all(make_session(token), "orders")
    known = wh.known_customers()
    rows = [
        (o["id"], o["customer_id"], o["amount"]) for o in orders.to_dict("records") if o["customer_id"] in known
    ]
    wh.insert_orders(rows)
    wh.commit()


def load_attachments(wh: Warehouse, token: str, attachments: list[dict]) -> None:
    for att in attachments:
        blob = download(att["url"], token)  # expect: SLP101
        wh.save_attachment(att["order_id"], blob)  # expect: SLP202, SLP203


def checkpoint_on_first_failure(wh: Warehouse, results: list[dict]) -> None:
    for res in results:
        if res["status"] == "failed":
            wh.commit()  # ok: SLP203 branch breaks, runs once
            break


def main() -> None:
    token = sys.argv[1]
    wh = Warehouse(sys.argv[2])
    load_customers(wh, token)
    load_orders(wh, token)


if __name__ == "__main__":
    main()
