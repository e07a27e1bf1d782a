import boto3
from flask import Blueprint, jsonify

from billing import repo
from billing.db import get_session

bp = Blueprint("billing", __name__)
EXPORT_BUCKET = "billing-exports"


@bp.route("/accounts/<int:account_id>/export", methods=["POST"])
def export_account(account_id: int):
    session = get_session()
    account = repo.account_for(session, account_id)
    s3 = boto3.client("s3")  # expect: SLP102
    s3.put_object(Bucket=EXPORT_BUCKET, Key=f"{account_id}.json", Body=str(account.balance))
    return jsonify({"ok": True})


def main() -> None:
    s3 = boto3.client("s3")  # ok: SLP102 a one-off script entry point, not a handler
    s3.create_bucket(Bucket=EXPORT_BUCKET)
