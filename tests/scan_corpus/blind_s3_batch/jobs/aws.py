import functools

import boto3
from botocore.config import Config

RETRY_CONFIG = Config(retries={"max_attempts": 5, "mode": "adaptive"}, max_pool_connections=32)


@functools.cache
def s3_client():
    return boto3.client("s3", config=RETRY_CONFIG)


def new_s3():
    return boto3.client("s3", config=RETRY_CONFIG)


def dynamo_table(name: str):
    return boto3.resource("dynamodb").Table(name)
