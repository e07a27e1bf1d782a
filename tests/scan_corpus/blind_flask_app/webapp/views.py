import boto3
import requests
from flask import Blueprint, Flask, jsonify, request
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.orm import Session

from webapp.fx import rate_table
from webapp.models import Invoice, SessionLocal, User, engine

app = Flask(__name__)
bp = Blueprint("billing", __name__, url_prefix="/billing")
crm = requests.Session()


@app.route("/users/summary", methods=["POST"])
def users_summary():
    ids = request.get_json()["ids"]
    out = []
    with Session(engine) as session:
        for user_id in ids:
            user = session.get(User, user_id)  # expect: SLP201
            if user is None:
                continue
            invoices = session.query(Invoice).filter_by(user_id=user.id).all()  # expect: SLP201
            out.append({"email": user.email, "open": sum(i.status == "open" for i in invoices)})
    return jsonify(out)


@app.route("/users/summary-fast", methods=["POST"])
def users_summary_fast():
    ids = request.get_json()["ids"]
    with SessionLocal() as session:
        users = session.scalars(select(User).where(User.id.in_(ids))).all()
        invoices = session.scalars(select(Invoice).where(Invoice.user_id.in_(ids))).all()
    open_by_user: dict[int, int] = {}
    for inv in invoices:
        if inv.status == "open":
            open_by_user[inv.user_id] = open_by_user.get(inv.user_id, 0) + 1
    return jsonify([{"email": u.email, "open": open_by_user.get(u.id, 0)} for u in users])


@app.route("/invoices/close", methods=["POST"])
def close_invoices():
    ids = request.get_json()["ids"]
    with SessionLocal() as session:
        for invoice_id in ids:
            session.execute(  # expect: SLP202
                update(Invoice).where(Invoice.id == invoice_id).values(status="closed")
            )
        session.commit()
    return jsonify({"closed": len(ids)})


@app.route("/invoices/create", methods=["POST"])
def create_invoices():
    rows = request.get_json()["invoices"]
    with SessionLocal() as session:
        created = []
        for row in rows:
            inv = Invoice(**row)
            session.add(inv)  # ok: SLP202 add makes no round trip
            session.flush()  # expect: SLP202
            created.append(inv.id)
        session.commit()
    return jsonify({"ids": created})


@app.route("/invoices/totals")
def totals():
    target = request.args.get("currency", "EUR")
    with SessionLocal() as session:
        rows = session.execute(
            select(Invoice.currency, Invoice.amount_cents).where(Invoice.status == "open")
        ).all()
    rates = rate_table(target)
    total = 0.0
    for currency, cents in rows:
        total += cents / 100 * rates[currency]
    return jsonify({"total": round(total, 2), "currency": target})


@app.route("/reports/<name>")
def report(name):
    reporting = create_engine("postgresql+psycopg://report@replica/billing")  # expect: SLP102
    with reporting.connect() as conn:
        rows = conn.execute(text("SELECT * FROM report_rows WHERE report = :n"), {"n": name}).all()
    return jsonify([dict(r._mapping) for r in rows])


@app.route("/crm/sync", methods=["POST"])
def crm_sync():
    with SessionLocal() as session:
        emails = session.scalars(select(User.email).where(User.active)).all()
    crm.post("https://crm.example/api/bulk", json={"emails": list(emails)}, timeout=30)  # ok: SLP102 module-level session
    return jsonify({"sent": len(emails)})


@bp.route("/export/<int:user_id>", methods=["POST"])
def export_invoices(user_id):
    s3 = boto3.client("s3")  # expect: SLP102
    with SessionLocal() as session:
        invoices = session.scalars(select(Invoice).where(Invoice.user_id == user_id)).all()
    body = "\n".join(f"{i.id},{i.amount_cents},{i.currency}" for i in invoices)
    s3.put_object(Bucket="billing-exports", Key=f"{user_id}.csv", Body=body.encode())
    return jsonify({"key": f"{user_id}.csv"})


@app.cli.command("deactivate-bounced")
def deactivate_bounced():
    bounced = crm.get("https://crm.example/api/bounced", timeout=30).json()
    with SessionLocal() as session:
        for email in bounced:
            session.execute(  # expect: SLP202
                text("UPDATE \"user\" SET active = false WHERE email = :e"), {"e": email}
            )
            session.commit()  # expect: SLP203


app.register_blueprint(bp)
