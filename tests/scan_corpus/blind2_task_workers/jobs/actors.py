import io

import boto3
import dramatiq
from PIL import Image

from jobs.config import BUCKET
from jobs.storage import fresh_s3, s3


@dramatiq.actor(max_retries=3)
def make_thumbnail(key: str) -> None:
    client = boto3.client("s3")  # expect: SLP102
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    img = Image.open(io.BytesIO(body))
    img.thumbnail((256, 256))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    client.put_object(Bucket=BUCKET, Key=f"thumb/{key}", Body=buf.getvalue())


@dramatiq.actor
def purge_prefix(prefix: str) -> None:
    client = s3()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    for page in pages:
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})


@dramatiq.actor
def copy_many(keys: list[str], target: str) -> None:
    for key in keys:
        client = fresh_s3()  # expect: SLP101
        client.copy_object(Bucket=target, Key=key, CopySource={"Bucket": BUCKET, "Key": key})
