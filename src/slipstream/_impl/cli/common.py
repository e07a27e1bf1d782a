"""What every command shares: the usage error and argument parsers."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["UsageError", "positive", "split"]


class UsageError(Exception):
    """A command used wrongly: printed as one `slipstream: error:` line, exit status 2."""


def split(values: Sequence[str] | None) -> list[str] | None:
    """``--select A,B --select C`` as ``[A, B, C]``; None when the option was not given."""
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value
