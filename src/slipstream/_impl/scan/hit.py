"""A finding before it is placed in its file (excerpt, fingerprint, relative path)."""

from __future__ import annotations

from dataclasses import dataclass

from .facts import Call
from .model import ChainStep

__all__ = ["Hit"]


@dataclass(frozen=True, slots=True)
class Hit:
    code: str
    call: Call
    message: str
    chain: tuple[ChainStep, ...] = ()
