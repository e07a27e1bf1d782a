"""A reporting script against an unknown warehouse driver: no type evidence, nothing reported."""

from pathlib import Path

from warehouse_sdk import get_conn

import yaml


def daily_totals(days: list[str]) -> dict[str, float]:
    conn = get_conn("analytics")
    out = {}
    for day in days:
        conn.execute("SELECT sum(amount) FROM sales WHERE day = ?", (day,))  # ok: SLP201 unknown receiver
        out[day] = conn.fetchone()[0]
        conn.commit()  # ok: SLP203 unknown receiver
    return out


def load_report_configs(paths: list[str]) -> list[dict]:
    configs = []
    for path in paths:
        with open(path) as f:
            configs.append(yaml.safe_load(f))  # ok: SLP103 a different file every iteration
    return configs


def render(rows: list[dict]) -> list[str]:
    out = []
    for row in rows:
        cfg = yaml.safe_load(Path("report_config.yaml").read_text())  # expect: SLP103
        out.append(cfg["format"].format(**row))
    return out
