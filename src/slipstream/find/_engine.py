"""The scan's entry points: find the files, parse each once, run the rules, apply suppressions
and filters. (Being written: the signatures below are the contract.)"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ._model import Finding, Severity

__all__ = ["FileError", "ScanReport", "scan", "scan_report"]

DEFAULT_EXCLUDES = (".venv", "venv", "site-packages", "node_modules", "build", "dist")


@dataclass(frozen=True, slots=True)
class FileError:
    """A file that was not scanned (``path`` relative to the root) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ScanReport:
    """What one scan saw: its findings (sorted by path, line, col, code), the files that could
    not be scanned, and how many files and lines were scanned."""

    root: str
    findings: tuple[Finding, ...]
    errors: tuple[FileError, ...]
    files: int
    lines: int


def scan_report(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = ".",
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
    min_severity: Severity = "low",
    exclude: Iterable[str] = (),
    knowledge: Mapping[str, Sequence[str]] | None = None,
    jobs: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
) -> ScanReport:
    """Scan ``paths`` (files or directories) as one project.

    ``select`` / ``ignore``: rule codes or names (``select=None``: every rule). ``exclude``:
    glob patterns (matched against paths relative to the root and against each path part) on
    top of the defaults (``.venv``, ``venv``, ``site-packages``, ``node_modules``, ``build``,
    ``dist``, hidden folders). ``knowledge``: extra API entries, ``{"query": ["pkg.mod.fn",
    ...], "write": [...], "commit": [...], "client": [...], "blocking": [...],
    "invariant": [...]}``. ``jobs``: worker processes for parsing (default: cores; 1: in this
    process). ``cache_dir``: where per-file results are cached (None: no cache). ``root``: what
    finding paths are relative to (default: the common directory of ``paths``).
    """
    raise NotImplementedError


def scan(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = ".",
    **options: object,
) -> list[Finding]:
    """The findings of :func:`scan_report` (same arguments)."""
    return list(scan_report(paths, **options).findings)  # type: ignore[arg-type]
