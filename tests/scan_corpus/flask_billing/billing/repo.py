from decimal import Decimal

from sqlalchemy.orm import Session

from billing.db import commit_row
from billing.db import fetch_account as _fetch
from billing.models import Account, Invoice


def account_for(session: Session, account_id: int) -> Account | None:
    return _fetch(session, account_id)


def store_invoice(session: Session, invoice: Invoice) -> None:
    invoice.total = (invoice.total or Decimal("0")).quantize(Decimal("0.01"))
    commit_row(session, invoice)


def accounts_by_id(session: Session, ids: list[int]) -> dict[int, Account]:
    rows = session.query(Account).filter(Account.id.in_(ids)).all()
    return {a.id: a for a in rows}
