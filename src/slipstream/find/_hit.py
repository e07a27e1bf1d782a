"""A finding before it is placed in its file (excerpt, fingerprint, relative path)."""

from __future__ import annotations

from dataclasses import dataclass

from ._facts import Call
from ._model import ChainStep

__all__ = ["Hit"]


@dataclass(frozen=True, slots=True)
class Hit:
    code: str
    call: Call
    message: str
    chain: tuple[ChainStep, ...] = ()
