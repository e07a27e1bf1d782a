import re

import pandas as pd

from etl.config import load_mapping


def clean_names(df: pd.DataFrame) -> pd.DataFrame:
    out = []
    for name in df["name"]:
        pattern = re.compile(r"\s+")  # ok: SLP103 re caches compiled patterns
        out.append(pattern.sub(" ", str(name)).strip())
    df = df.copy()
    df["name"] = out
    return df


def normalise_countries(df: pd.DataFrame) -> list[str]:
    codes = []
    for raw in df["country"]:
        mapping = load_mapping()  # expect: SLP103
        codes.append(mapping.get(raw, raw))
    return codes


def read_exports(paths: list[str]) -> pd.DataFrame:
    frames = [pd.read_csv(p, parse_dates=["created"]) for p in paths]  # ok: SLP103 input changes per item
    return pd.concat(frames, ignore_index=True)
