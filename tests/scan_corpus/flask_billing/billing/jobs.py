"""Nightly billing: the loops call repo helpers that call db helpers (three calls deep)."""

import re
from decimal import Decimal

from partnerkit import api as partner_api
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from billing import repo
from billing.db import get_session
from billing.models import Account, Invoice, Job

INVOICE_RE = re.compile(r"^INV-(\d+)$")


def bill_all(account_ids: list[int]) -> int:
    session = get_session()
    billed = 0
    for aid in account_ids:
        account = repo.account_for(session, aid)  # expect: SLP201
        if account is None:
            continue
        invoice = Invoice(account_id=aid, total=account.balance)
        repo.store_invoice(session, invoice)  # expect: SLP203
        billed += 1
    return billed


def bill_all_batched(account_ids: list[int]) -> int:
    session = get_session()
    accounts = repo.accounts_by_id(session, account_ids)
    for aid in account_ids:
        account = accounts.get(aid)  # ok: SLP201 a dict
        if account is not None:
            session.add(Invoice(account_id=aid, total=account.balance))  # ok: SLP202 add is not a round trip
    session.commit()  # ok: SLP203 after the loop
    return len(accounts)


def freeze_overdue(session: Session, overdue: list[Account]) -> None:
    for account in overdue:
        session.execute(update(Account).where(Account.id == account.id).values(status="frozen"))  # expect: SLP202
        account.status = "frozen"
        session.flush()  # expect: SLP202
    session.commit()


def renumber(session: Session, invoices: list[Invoice]) -> None:
    for i, invoice in enumerate(invoices, 1):
        invoice.number = f"INV-{i:06d}"
        if i % 500 == 0:
            session.commit()  # ok: SLP203 batched every 500 rows
    session.commit()


def close_accounts(session: Session, accounts: list[Account]) -> None:
    for account in accounts:
        account.status = "closed"
        session.commit()  # expect: SLP203


def parse_report(lines: list[str]) -> list[int]:
    numbers = []
    for line in lines:
        match = re.compile(r"^INV-(\d+)$").match(line.strip())  # ok: SLP103 re caches compiled patterns
        if match:
            numbers.append(int(match.group(1)))
    fast = [int(m.group(1)) for m in map(INVOICE_RE.match, lines) if m]
    return numbers + fast


def apply_rules(rules: list[dict], text: str) -> list[str]:
    hits = []
    for rule in rules:
        pattern = re.compile(rule["regex"])  # ok: SLP103 depends on the loop variable
        if pattern.search(text):
            hits.append(rule["name"])
    return hits


def run_queue() -> None:
    session = get_session()
    while True:
        jobs = session.query(Job).filter_by(status="new").limit(100).all()  # ok: SLP201 polling loop
        if not jobs:
            break
        for job in jobs:
            job.status = "done"
        session.commit()  # ok: SLP203 while loop


def commit_with_retry(session: Session) -> None:
    for attempt in range(3):
        try:
            session.commit()  # ok: SLP203 retry
            return
        except OperationalError:
            session.rollback()
    raise RuntimeError("commit failed after %d attempts" % 3)


def sync_partner_balances(rows: list[dict]) -> Decimal:
    session = partner_api.open_session()
    total = Decimal("0")
    for row in rows:
        remote = session.get(row["partner_id"])  # ok: SLP201 no evidence this session is a database
        total += Decimal(str(remote["balance"]))
        session.commit()  # ok: SLP203 unknown receiver
    return total
