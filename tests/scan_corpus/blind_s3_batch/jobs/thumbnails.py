import io
import logging
import re
from concurrent.futures import ThreadPoolExecutor

import boto3
from PIL import Image

from jobs.aws import new_s3, s3_client

log = logging.getLogger(__name__)

BUCKET = "media-originals"
THUMBS = "media-thumbs"
SIZES = [(128, 128), (512, 512)]


def list_keys(prefix: str) -> list[str]:
    paginator = s3_client().get_paginator("list_objects_v2")
    keys = []
    for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def thumbnail_one(key: str) -> int:
    s3 = boto3.client("s3")  # expect: SLP102
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    written = 0
    for size in SIZES:
        img = Image.open(io.BytesIO(body))
        img.thumbnail(size)
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=85)
        s3.put_object(Bucket=THUMBS, Key=f"{size[0]}/{key}", Body=out.getvalue())
        written += 1
    return written


def thumbnail_all(prefix: str) -> int:
    keys = list_keys(prefix)
    with ThreadPoolExecutor(max_workers=16) as pool:
        return sum(pool.map(thumbnail_one, keys))


def copy_to_archive(keys: list[str], archive_bucket: str) -> None:
    for key in keys:
        s3 = new_s3()  # expect: SLP101
        s3.copy_object(Bucket=archive_bucket, Key=key, CopySource={"Bucket": BUCKET, "Key": key})


def delete_old(keys: list[str]) -> None:
    s3 = s3_client()
    for start in range(0, len(keys), 1000):
        batch = keys[start : start + 1000]
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in batch]})


def upload_with_retry(path: str, key: str) -> None:
    for attempt in range(3):
        client = boto3.client("s3")  # ok: SLP101 retry loop, not a per-item loop
        try:
            client.upload_file(path, BUCKET, key)
            return
        except Exception:
            log.warning("upload of %s failed (attempt %d)", key, attempt + 1)
    raise RuntimeError(f"could not upload {key}")


def rename_keys(keys: list[str]) -> list[str]:
    renamed = []
    for key in keys:
        date_re = re.compile(r"(\d{4})-(\d{2})-(\d{2})")  # ok: SLP103 re caches compiled patterns
        renamed.append(date_re.sub(r"\1/\2/\3", key))
    return renamed
