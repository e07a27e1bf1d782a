"""One concept, one name: the public signatures use the glossary's words (docs/glossary.md),
carry their units, and the value types are keyword-only."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import slipstream as ss

GLOSSARY_DOC = Path(__file__).resolve().parents[1] / "docs" / "glossary.md"

# The words the glossary chose, and the synonyms it retired (the old names are gone, not aliased:
# CHANGELOG.md lists the cut).
GLOSSARY = {
    "batch_size": "items per trip (rows per flush, keys per batch call, rows per fetch or delete)",
    "max_wait_s": "how long a partial batch waits for more items before it goes anyway",
    "max_backoff_s": "the cap on one retry's backoff",
    "slow_s": "the duration past which an operation counts as slow and is reported",
}
RETIRED = {
    "max_batch_size": "batch_size",
    "max_items": "batch_size",
    "chunk_size": "batch_size",
    "batch": "batch_size",
    "max_delay_s": "max_wait_s or max_backoff_s",
    "linger_s": "max_wait_s",
    "threshold_s": "slow_s",
}
# float parameters that are not durations, or are wall-clock timestamps (epoch seconds, as
# time.time() returns them): every other float names its unit with a suffix
NOT_DURATIONS = {
    "available", "burst", "decrease", "failure_rate", "max", "max_balance", "mean", "min_value",
    "multiplier", "n", "p50", "p95", "p99", "per_minute", "per_second", "q", "ratio",
    "relative_error", "total", "units", "value", "values", "weight", "clock", "hook",
    "created", "updated", "heartbeat",  # RunStatus: wall-clock timestamps
    "queries_per_item",  # StagePlan / StageReport: statements per item
}  # fmt: skip
UNIT_SUFFIXES = ("_s", "_per_s", "seconds")


def public_parameters() -> Iterator[tuple[str, inspect.Parameter]]:
    """Every parameter of every exported callable, class and public method."""
    for name in ss.__all__:
        obj = getattr(ss, name)
        targets: list[tuple[str, Any]] = [(name, obj)]
        if inspect.isclass(obj):
            targets += [
                (f"{name}.{attr}", fn)
                for attr, fn in vars(obj).items()
                if not attr.startswith("_") and callable(fn)
            ]
        for label, fn in targets:
            try:
                signature = inspect.signature(fn)
            except (TypeError, ValueError):
                continue
            for parameter in signature.parameters.values():
                yield label, parameter


def test_no_retired_synonym_is_left() -> None:
    """No public signature still uses a name the glossary retired."""
    left = [
        f"{label}({p.name}=...): say {RETIRED[p.name]}"
        for label, p in public_parameters()
        if p.name in RETIRED
    ]
    assert [] == left


def test_the_glossary_words_are_used_and_documented() -> None:
    """Each glossary word appears in some public signature and is defined in docs/glossary.md."""
    used = {p.name for _, p in public_parameters()}
    assert set(GLOSSARY) <= used
    text = GLOSSARY_DOC.read_text()
    assert [] == [word for word in GLOSSARY if f"`{word}`" not in text]
    assert [] == [old for old in RETIRED if f"`{old}`" not in text]


def test_every_duration_names_its_unit() -> None:
    """A float parameter is a count, a ratio or a timestamp on a short list; any other is a
    duration and its name ends in ``_s`` (or ``_per_s`` for a rate)."""
    unitless = sorted(
        {
            f"{label}({p.name})"
            for label, p in public_parameters()
            if "float" in str(p.annotation)
            and p.name not in NOT_DURATIONS
            and not p.name.endswith(UNIT_SUFFIXES)
        }
    )
    assert [] == unitless


def test_value_types_are_keyword_only() -> None:
    """Every exported dataclass takes its fields by keyword (a ``Stage`` takes its function
    first, positionally, and everything else by keyword)."""
    positional = {}
    for name in ss.__all__:
        obj = getattr(ss, name)
        if not (inspect.isclass(obj) and dataclasses.is_dataclass(obj)):
            continue
        names = [
            p.name
            for p in inspect.signature(obj).parameters.values()
            if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        ]
        if names and (name, names) != ("Stage", ["fn"]):
            positional[name] = names
    assert {} == positional
