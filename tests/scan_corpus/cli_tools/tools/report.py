"""Report generation: invariant work in loops."""

import json
import re
import tomllib
from pathlib import Path

import yaml
from jinja2 import Environment, FileSystemLoader, Template
from pydantic import BaseModel, TypeAdapter, create_model
from pydantic_settings import BaseSettings

EMAIL_TEMPLATE = "Dear {{ name }}, your invoice {{ number }} is due."
CONFIG_PATH = Path("config/report.yaml")
HELP = "a query per row looks like `for r in rows: session.get(R, r)  # expect: SLP201`"  # (a string, not a marker)


class ReportSettings(BaseSettings):
    currency: str = "EUR"
    timezone: str = "UTC"


class Row(BaseModel):
    name: str
    number: str


def load_config() -> dict:
    return yaml.safe_load(CONFIG_PATH.read_text())


def load_version() -> str:
    with open("pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


def load_file(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def emails(rows: list[dict]) -> list[str]:
    out = []
    for row in rows:
        settings = ReportSettings()  # expect: SLP103
        cfg = load_config()  # expect: SLP103
        tmpl = Template(EMAIL_TEMPLATE)  # expect: SLP103
        out.append(tmpl.render(**row, currency=settings.currency, cfg=cfg, version=load_version()))  # expect: SLP103
    return out


def emails_hoisted(rows: list[dict]) -> list[str]:
    env = Environment(loader=FileSystemLoader("templates"))
    tmpl = env.get_template("email.txt")
    cfg = load_config()
    out = []
    for row in rows:
        out.append(tmpl.render(**row, cfg=cfg))  # ok: SLP103 built before the loop
        body = env.from_string(row["custom"]) if row.get("custom") else None  # ok: SLP103 depends on the row
        out.append(body.render(**row) if body else "")
    return out


def validate_rows(raw: list[str], schemas: list[dict]) -> list:
    out = []
    adapter = TypeAdapter(list[Row])
    for line in raw:
        rows = TypeAdapter(list[Row]).validate_json(line)  # expect: SLP103
        out.extend(adapter.validate_json(line))  # ok: SLP103
        out.extend(rows)
    for schema in schemas:
        model = create_model(schema["title"], **{k: (str, ...) for k in schema["fields"]})  # ok: SLP103 one model per schema
        out.append(model)
    for line in raw:
        doc = json.loads(line)  # ok: SLP103 the line changes
        if re.match(r"^\d+$", doc.get("number", "")):  # ok: SLP103 not a compile
            out.append(doc)
    return out


def per_file_configs(paths: list[Path]) -> list[dict]:
    return [load_file(p) for p in paths]  # ok: SLP103 a different file each time


def retry_config() -> dict:
    for attempt in range(3):
        try:
            return load_config()  # ok: SLP103 retry loop
        except OSError:
            continue
    return {}


def dynamic_models(specs: list[dict]) -> list[type]:
    fields = {"name": (str, ...), "number": (str, ...)}
    models = []
    for spec in specs:
        models.append(create_model("Invoice", **fields))  # expect: SLP103
        models.append(create_model(spec["name"], **fields))  # ok: SLP103 the name changes
    return models
