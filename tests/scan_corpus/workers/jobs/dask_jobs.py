import json
import re

import dask
from dask.distributed import Client
from jinja2 import Environment, FileSystemLoader, Template

EMAIL_TEMPLATE = "Hello {{ name }}, your score is {{ score }}."


def clean_records(records: list[str]) -> list[dict]:
    out = []
    for rec in records:
        ws = re.compile(r"\s+")  # ok: SLP103 re caches compiled patterns
        out.append(json.loads(ws.sub(" ", rec)))  # ok: SLP103 depends on the record
    return out


def render_emails(rows: list[dict]) -> list[str]:
    out = []
    for row in rows:
        env = Environment(loader=FileSystemLoader("templates"))  # expect: SLP103
        out.append(env.get_template("score.txt").render(**row))
    bodies = [Template(EMAIL_TEMPLATE).render(**row) for row in rows]  # expect: SLP103
    return out + bodies


def render_custom(rows: list[dict]) -> list[str]:
    return [Template(row["template"]).render(**row) for row in rows]  # ok: SLP103 a different template per row


def main(paths: list[str]) -> None:
    client = Client("tcp://scheduler:8786")
    futures = client.map(clean_records, [[p] for p in paths])
    results = client.gather(futures)
    lazy = [dask.delayed(render_emails)(r) for r in results]
    dask.compute(*lazy)
