from functools import cache, lru_cache

import boto3
import httpx
from minio import Minio
from pymongo import MongoClient

ENDPOINT = "https://s3.eu-central-1.amazonaws.com"
MONGO_URI = "mongodb://mongo:27017"
_minio: Minio | None = None


def make_s3():
    return boto3.client("s3", endpoint_url=ENDPOINT)


@lru_cache(maxsize=1)
def get_s3():
    return boto3.client("s3", endpoint_url=ENDPOINT)


@cache
def get_mongo() -> MongoClient:
    return MongoClient(MONGO_URI)


def get_minio() -> Minio:
    global _minio
    if _minio is None:
        _minio = Minio("minio:9000", access_key="k", secret_key="s")
    return _minio


class Api:
    def __init__(self) -> None:
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        self._client = self._client or httpx.Client(base_url="https://api.internal")
        return self._client

    def fetch(self, path: str) -> dict:
        return self.client.get(path).json()
