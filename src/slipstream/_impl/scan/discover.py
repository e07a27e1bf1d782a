"""Which files a scan reads: ``.py`` files under the given paths, minus hidden folders, the
default excludes and the user's glob patterns; and each file's module name, as Python would
import it."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DEFAULT_EXCLUDES", "discover", "module_names"]

DEFAULT_EXCLUDES = (
    ".venv",
    "venv",
    "site-packages",
    "node_modules",
    "build",
    "dist",
    "__pycache__",
)


def _excluded(rel: str, patterns: Sequence[str]) -> bool:
    parts = rel.split("/")
    for p in patterns:
        if fnmatch.fnmatch(rel, p) or any(fnmatch.fnmatch(part, p) for part in parts):
            return True
    return False


def discover(paths: Sequence[Path], root: Path, patterns: Sequence[str]) -> list[tuple[Path, str]]:
    found: dict[str, Path] = {}
    for p in paths:
        if p.is_file():
            found.setdefault(_rel(p, root), p)
            continue
        if not p.is_dir():
            raise FileNotFoundError(f"no such file or directory: {p}")
        for dirpath, dirnames, filenames in os.walk(p):  # symlinked folders are not followed
            here = Path(dirpath)
            keep = []
            for d in dirnames:
                rel = _rel(here / d, root)
                if d.startswith(".") or d in DEFAULT_EXCLUDES or _excluded(rel, patterns):
                    continue
                keep.append(d)
            dirnames[:] = sorted(keep)
            for name in filenames:
                if not name.endswith((".py", ".pyi")) or name.endswith(".pyi"):
                    continue
                full = here / name
                rel = _rel(full, root)
                if _excluded(rel, patterns):
                    continue
                found.setdefault(rel, full)
    return sorted(((path, rel) for rel, path in found.items()), key=lambda x: x[1])


def _rel(p: Path, root: Path) -> str:
    try:
        return p.resolve().relative_to(root).as_posix() if p.is_absolute() or True else str(p)
    except ValueError:
        return p.resolve().as_posix()


def module_names(files: list[tuple[Path, str]]) -> dict[str, str]:
    """Each file's module name, as Python would import it: the path from the first folder
    above it that is not a package (has no ``__init__.py``), so ``src/app/db.py`` is
    ``app.db`` whatever folder the scan started from. Two files that would claim one name
    (two scripts called ``main.py``) keep their path-derived names instead."""
    is_package: dict[Path, bool] = {}

    def package(folder: Path) -> bool:
        hit = is_package.get(folder)
        if hit is None:
            hit = is_package[folder] = (folder / "__init__.py").is_file()
        return hit

    names: dict[str, str] = {}
    taken: dict[str, str] = {}
    for full, rel in files:
        parts = [full.stem] if full.name != "__init__.py" else []
        folder = full.parent
        while package(folder) and len(parts) < 32:
            parts.append(folder.name)
            folder = folder.parent
        name = ".".join(reversed(parts)) or full.parent.name
        if name in taken:
            name = _module_name(rel)[0]
        taken[name] = rel
        names[rel] = name
    return names


def _module_name(rel: str) -> tuple[str, bool]:
    parts = rel[:-3].split("/") if rel.endswith(".py") else rel.split("/")
    package = parts[-1] == "__init__"
    if package:
        parts = parts[:-1]
    return ".".join(parts) or "__init__", package
