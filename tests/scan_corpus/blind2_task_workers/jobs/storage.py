from functools import lru_cache

import boto3


@lru_cache(maxsize=1)
def s3():
    return boto3.client("s3")  # ok: SLP102 memoised with lru_cache


def fresh_s3():
    return boto3.client("s3", region_name="eu-west-1")
