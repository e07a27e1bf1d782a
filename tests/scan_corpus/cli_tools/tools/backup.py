"""Nightly backup and sync scripts."""

import os
import sys
import time

import boto3
import botocore.config
import httpx
import requests
from pymongo import MongoClient
from sqlalchemy import create_engine, text

from tools import clients
from tools.clients import Api, get_minio, get_mongo, get_s3
from tools.clients import make_s3 as s3_client

DB_URL = os.environ.get("DB_URL", "postgresql://backup@db/app")
MONGO_URI = "mongodb://mongo:27017"


def upload_all(bucket: str, paths: list[str]) -> None:
    for path in paths:
        s3 = boto3.client("s3")  # expect: SLP101
        s3.upload_file(path, bucket, os.path.basename(path))


def upload_all_helper(bucket: str, paths: list[str]) -> None:
    for path in paths:
        s3_client().upload_file(path, bucket, os.path.basename(path))  # expect: SLP101
        clients.make_s3().head_object(Bucket=bucket, Key=os.path.basename(path))  # expect: SLP101


def upload_all_hoisted(bucket: str, paths: list[str]) -> None:
    s3 = s3_client()
    for path in paths:
        s3.upload_file(path, bucket, os.path.basename(path))
        get_s3().head_object(Bucket=bucket, Key=path)  # ok: SLP101 memoised with lru_cache
        get_minio().fput_object(bucket, path, path)  # ok: SLP101 memoised by a global guard


def mirror(urls: list[str]) -> list[int]:
    codes = []
    for url in urls:
        with requests.Session() as session:  # expect: SLP101
            codes.append(session.head(url, timeout=5).status_code)
    for url in urls:
        client = httpx.Client(timeout=5)  # expect: SLP101
        codes.append(client.head(url).status_code)
        client.close()
    return codes


def check_databases(names: list[str]) -> dict[str, int]:
    out = {}
    for name in names:
        engine = create_engine(DB_URL)  # expect: SLP101
        with engine.connect() as conn:
            out[name] = conn.execute(text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}).scalar()  # expect: SLP201
    return out


def count_collections(names: list[str]) -> dict[str, int]:
    counts = {}
    for name in names:
        mongo = MongoClient(MONGO_URI)  # expect: SLP101
        counts[name] = mongo["app"][name].count_documents({})  # expect: SLP201
        counts[name] += get_mongo()["app"][name].count_documents({"archived": True})  # ok: SLP101  # expect: SLP201
    return counts


def download_with_retry(url: str) -> bytes:
    for attempt in range(3):
        client = httpx.Client(timeout=10)  # ok: SLP101 retry loop
        try:
            return client.get(url).content
        except httpx.TransportError:
            time.sleep(2**attempt)
        finally:
            client.close()
    raise RuntimeError(url)


def download_with_retries(url: str, max_retries: int) -> bytes:
    for retry in range(max_retries):
        try:
            with httpx.Client() as client:  # ok: SLP101 retry loop (target named retry)
                return client.get(url).content
        except httpx.TransportError:
            time.sleep(retry)
    raise RuntimeError(url)


def configure(regions: list[str]) -> list:
    configs = []
    for region in regions:
        cfg = botocore.config.Config(region_name=region, retries={"max_attempts": 5})  # ok: SLP101 config, not a client
        limits = httpx.Limits(max_connections=10)  # ok: SLP101
        timeout = httpx.Timeout(5.0)  # ok: SLP101
        configs.append((cfg, limits, timeout))
    return configs


def poll_queue(queue_url: str) -> None:
    while True:
        sqs = boto3.client("sqs")  # ok: SLP101 a while loop (consumer)
        msgs = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=20).get("Messages", [])
        if not msgs:
            break


def api_pages(paths: list[str]) -> list[dict]:
    api = Api()
    return [api.fetch(p) for p in paths]  # ok: SLP101 the client is stored on self


if __name__ == "__main__":
    upload_all(sys.argv[1], sys.argv[2:])
