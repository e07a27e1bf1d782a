"""Sync SQLAlchemy 1.x style: sessionmaker, session.query, helpers that commit."""

from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from billing.models import Account

engine = create_engine("postgresql+psycopg2://billing@db/billing", pool_pre_ping=True)
SessionLocal = sessionmaker(bind=engine)


def get_session() -> Session:
    return SessionLocal()


def fetch_account(session: Session, account_id: int) -> Account | None:
    return session.query(Account).filter_by(id=account_id).first()


def commit_row(session: Session, row: object) -> None:
    session.add(row)
    session.commit()
