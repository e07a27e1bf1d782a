"""The scan's settings: ``[tool.slipstream.scan]`` in the nearest ``pyproject.toml``, rule
selection by code, name or code prefix, and the baseline of findings already known.

    [tool.slipstream.scan]
    select = ["SLP2", "blocking-in-async"]   # codes, names or code prefixes (default: all)
    ignore = ["SLP501"]
    exclude = ["migrations/*"]               # on top of .venv, build, hidden folders, ...
    min-severity = "medium"                  # low | medium | high
    format = "text"                          # text | json | sarif | markdown
    jobs = 4                                 # worker processes (default: cores)
    cache = true                             # .slipstream_cache/ beside pyproject.toml

    [tool.slipstream.scan.knowledge]         # your own APIs, by what the import resolves to
    query = ["myapp.db.fetch_one"]
    blocking = ["myapp.storage.download"]

A value given on the command line replaces the file's value for that key.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ..core import rules as _catalogue
from ..core.errors import ConfigError
from .model import SEVERITIES, Finding, Severity

__all__ = [
    "FORMATS",
    "KNOWLEDGE_KINDS",
    "ConfigError",
    "ScanConfig",
    "filter_baseline",
    "find_pyproject",
    "load_config",
    "read_baseline",
    "resolve_rules",
    "write_baseline",
]

FORMATS = ("text", "json", "sarif", "markdown")
KNOWLEDGE_KINDS = ("query", "write", "commit", "client", "blocking", "invariant")
BASELINE_VERSION = 1

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_KEYS = ("select", "ignore", "exclude", "min-severity", "format", "jobs", "cache", "knowledge")


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """The settings of one scan. ``select=None``: every rule. ``source``: the pyproject.toml
    they were read from (None: defaults only). Rule keys are normalised to codes."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    min_severity: Severity = "low"
    format: str = "text"
    jobs: int | None = None
    cache: bool = True
    knowledge: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: Path | None = None


def find_pyproject(start: str | os.PathLike[str]) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start`` (a file or a directory)."""
    here = Path(start).resolve()
    if not here.is_dir():
        here = here.parent
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(root: str | os.PathLike[str]) -> ScanConfig:
    """Read ``[tool.slipstream.scan]`` from the nearest pyproject.toml at or above ``root``.

    Returns the defaults when there is no such file or no such table.

    Raises:
        ConfigError: the file is not valid TOML, a key is unknown or a value is wrong; the
            message names the key and the file.
    """
    path = find_pyproject(root)
    if path is None:
        return ScanConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("pyproject.toml", f"cannot be read: {exc}", str(path)) from exc
    table: Any = data.get("tool", {}).get("slipstream", {}).get("scan")
    if table is None:
        return ScanConfig(source=path)
    where = f"[tool.slipstream.scan] in {path}"
    if not isinstance(table, dict):
        raise ConfigError("tool.slipstream.scan", "must be a table", str(path))
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ConfigError(", ".join(unknown), f"unknown key (known: {', '.join(_KEYS)})", where)
    select = table.get("select")
    jobs = table.get("jobs")
    if jobs is not None and (type(jobs) is not int or jobs < 1):
        raise ConfigError("jobs", f"must be an integer >= 1, got {jobs!r}", where)
    cache = table.get("cache", True)
    if not isinstance(cache, bool):
        raise ConfigError("cache", f"must be true or false, got {cache!r}", where)
    return ScanConfig(
        select=None
        if select is None
        else resolve_rules(_strings(select, "select", where), "select", where),
        ignore=resolve_rules(_strings(table.get("ignore", []), "ignore", where), "ignore", where),
        exclude=_strings(table.get("exclude", []), "exclude", where),
        min_severity=check_severity(table.get("min-severity", "low"), "min-severity", where),
        format=check_format(table.get("format", "text"), "format", where),
        jobs=jobs,
        cache=cache,
        knowledge=_knowledge(table.get("knowledge", {}), where),
        source=path,
    )


def resolve_rules(keys: Iterable[str], key: str, source: str) -> tuple[str, ...]:
    """The rule codes that ``keys`` name: each a code (``SLP201``), a name
    (``query-in-loop``) or a code prefix (``SLP2``: every SLP2xx rule), in catalogue order.

    Raises:
        ConfigError: some keys name no rule; the message lists them all.
    """
    wanted: set[str] = set()
    unknown: list[str] = []
    for raw in keys:
        item = raw.strip()
        if not item:
            continue
        upper = item.upper()
        matches = {
            r.code
            for r in _catalogue.RULES
            if r.name == item
            or r.code == upper
            or (upper.startswith("SLP") and r.code.startswith(upper))
        }
        if matches:
            wanted |= matches
        else:
            unknown.append(item)
    if unknown:
        known = ", ".join(f"{r.code} ({r.name})" for r in _catalogue.RULES) or "none"
        raise ConfigError(
            key, f"unknown rule {', '.join(map(repr, unknown))}; known: {known}", source
        )
    return tuple(r.code for r in _catalogue.RULES if r.code in wanted)


def check_severity(value: object, key: str, source: str) -> Severity:
    """``value`` if it is a severity (``low``, ``medium``, ``high``)."""
    if value not in SEVERITIES:
        raise ConfigError(key, f"must be one of {', '.join(SEVERITIES)}, got {value!r}", source)
    return value


def check_format(value: object, key: str, source: str) -> str:
    """``value`` if it is a report format."""
    if value not in FORMATS:
        raise ConfigError(key, f"must be one of {', '.join(FORMATS)}, got {value!r}", source)
    return value


def _strings(value: object, key: str, source: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(key, f"must be a list of strings, got {value!r}", source)
    return tuple(cast(list[str], value))


def _knowledge(value: object, source: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise ConfigError("knowledge", f"must be a table, got {value!r}", source)
    out: dict[str, tuple[str, ...]] = {}
    for kind, names in value.items():
        key = f"knowledge.{kind}"
        if kind not in KNOWLEDGE_KINDS:
            raise ConfigError(key, f"unknown kind (known: {', '.join(KNOWLEDGE_KINDS)})", source)
        dotted = _strings(names, key, source)
        bad = [n for n in dotted if not _DOTTED.match(n)]
        if bad:
            raise ConfigError(
                key, f"not a dotted name: {', '.join(map(repr, bad))} (e.g. 'pkg.mod.fn')", source
            )
        out[kind] = dotted
    return out


# -- baseline -------------------------------------------------------------------------------


def _key(finding: Finding) -> tuple[str, str, str]:
    return (finding.code, finding.path, finding.fingerprint)


def write_baseline(path: str | os.PathLike[str], findings: Iterable[Finding]) -> int:
    """Write ``findings`` as a baseline (JSON, sorted; one entry per code + path + fingerprint
    with the number of such findings). Line numbers are not stored, so a baseline survives
    edits that move code. Returns the number of findings written."""
    counts = Counter(_key(f) for f in findings)
    entries = [
        {"code": code, "path": file, "fingerprint": fp, "count": n}
        for (code, file, fp), n in sorted(counts.items())
    ]
    body = {"version": BASELINE_VERSION, "tool": "slipstream scan", "findings": entries}
    Path(path).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return sum(counts.values())


def read_baseline(path: str | os.PathLike[str]) -> Counter[tuple[str, str, str]]:
    """The ``(code, path, fingerprint)`` keys of a baseline and how often each occurs.

    Raises:
        ConfigError: the file is missing or is not a baseline written by
            :func:`write_baseline`.
    """
    where = str(path)
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError("--baseline", f"cannot read the baseline: {exc}", where) from exc
    entries = body.get("findings") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise ConfigError("--baseline", "not a slipstream baseline (no 'findings' list)", where)
    counts: Counter[tuple[str, str, str]] = Counter()
    for entry in entries:
        try:
            key = (str(entry["code"]), str(entry["path"]), str(entry["fingerprint"]))
            count = int(entry.get("count", 1))
        except (TypeError, KeyError, ValueError, AttributeError):
            raise ConfigError("--baseline", f"bad entry {entry!r}", where) from None
        counts[key] += count
    return counts


def filter_baseline(findings: Iterable[Finding], path: str | os.PathLike[str]) -> list[Finding]:
    """The ``findings`` that are not in the baseline at ``path``.

    Matches on code + path + fingerprint, with multiplicity: a baseline entry with count 2
    absorbs two matching findings and a third is reported. Line numbers play no part, so a
    finding whose line moved still matches.
    """
    remaining = read_baseline(path)
    kept = []
    for finding in findings:
        key = _key(finding)
        if remaining[key] > 0:
            remaining[key] -= 1
        else:
            kept.append(finding)
    return kept
