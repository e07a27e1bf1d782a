import re

import boto3
import ray

BUCKET = "ml-features"
LINE_RE = re.compile(r"^(?P<user>\w+)\t(?P<score>[\d.]+)$")


@ray.remote
def export_partitions(partition_keys: list[str], rows_by_key: dict[str, bytes]) -> int:
    written = 0
    for key in partition_keys:
        s3 = boto3.client("s3")  # expect: SLP101
        s3.put_object(Bucket=BUCKET, Key=key, Body=rows_by_key[key])
        written += 1
    return written


@ray.remote
def export_partitions_hoisted(partition_keys: list[str], rows_by_key: dict[str, bytes]) -> int:
    s3 = boto3.client("s3")  # expect: SLP102
    for key in partition_keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=rows_by_key[key])
    return len(partition_keys)


@ray.remote
class Scorer:
    def __init__(self) -> None:
        self.s3 = boto3.client("s3")  # ok: SLP102 an actor builds it once

    def score(self, lines: list[str]) -> list[float]:
        out = []
        for line in lines:
            m = LINE_RE.match(line)  # ok: SLP103 compiled at import
            if m:
                out.append(float(m["score"]))
        return out


def run(keys: list[str]) -> None:
    ray.init()
    scorer = Scorer.remote()
    refs = [export_partitions.remote([k], {}) for k in keys]
    ray.get(refs)
    ray.get(scorer.score.remote(keys))
