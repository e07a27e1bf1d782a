"""The scan's cache on disk: per file, its content digest and its facts (or why it could not be
scanned), and separately the last scan's result with the key of everything it depended on, so
an unchanged project is answered without reading the facts at all."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from .facts import ModuleFacts

__all__ = ["SCANNER_VERSION", "FactsCache"]

# part of the cache file names and of the result key: bump it when the facts or the rules
# change what a scan of unchanged files finds
SCANNER_VERSION = "2"  # 2: DataLoader loads awaited in a loop (SLP301)


class FactsCache:
    """One pickle per scan root: relative path -> (content digest, facts or error)."""

    def __init__(self, directory: Path | None, salt: str):
        self.path = directory / f"scan-v{SCANNER_VERSION}.pickle" if directory else None
        self.salt = salt
        self.entries: dict[str, tuple[str, ModuleFacts | str]] = {}
        self.dirty = False
        self.loaded = False
        self.result_path = (
            directory / f"scan-v{SCANNER_VERSION}-result.pickle" if directory else None
        )

    def load(self) -> None:
        """Read the facts (only when some file changed: an unchanged project is answered from
        the result cache without them)."""
        self.loaded = True
        if self.path is not None and self.path.is_file():
            try:
                with self.path.open("rb") as f:
                    salt_on_disk, entries = pickle.load(f)
                if salt_on_disk == self.salt:
                    self.entries = entries
            except Exception:  # a damaged or foreign cache is rebuilt
                self.entries = {}

    def result(self, key: str) -> tuple[Any, ...] | None:
        if self.result_path is None or not self.result_path.is_file():
            return None
        try:
            with self.result_path.open("rb") as f:
                stored_key, value = pickle.load(f)
        except Exception:
            return None
        return value if stored_key == key else None

    def save_result(self, key: str, value: tuple[Any, ...]) -> None:
        if self.result_path is None:
            return
        self._write(self.result_path, (key, value))

    def _write(self, path: Path, value: object) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            gitignore = path.parent / ".gitignore"
            if not gitignore.exists():
                gitignore.write_text("*\n")
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only checkout scans without a cache

    def get(self, rel: str, digest: str) -> ModuleFacts | str | None:
        if not self.loaded:
            self.load()
        hit = self.entries.get(rel)
        return hit[1] if hit is not None and hit[0] == digest else None

    def put(self, rel: str, digest: str, facts: ModuleFacts | str) -> None:
        self.entries[rel] = (digest, facts)
        self.dirty = True

    def save(self, keep: set[str]) -> None:
        if self.path is None:
            return
        if set(self.entries) - keep:
            self.entries = {k: v for k, v in self.entries.items() if k in keep}
            self.dirty = True
        if not self.dirty:
            return
        self._write(self.path, (self.salt, self.entries))
