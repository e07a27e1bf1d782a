import hashlib
from pathlib import Path

import aiofiles


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(65536), b""):
            h.update(chunk)
    return h.hexdigest()


class FileProcessor:
    def __init__(self) -> None:
        self._hash_cache = {}  # expect: SLP501
        self.results = {}  # ok: SLP501 not named like a cache

    async def calculate_hash_async(self, file_path: Path) -> str:
        key = str(file_path)
        if key in self._hash_cache:  # ok: SLP503 the body only returns
            return self._hash_cache[key]
        sha = hashlib.sha256()
        async with aiofiles.open(file_path, "rb") as f:  # ok: SLP401 aiofiles is async
            while chunk := await f.read(8192):
                sha.update(chunk)
        result = sha.hexdigest()
        self._hash_cache[key] = result
        self.results[key] = result
        return result

    async def calculate_hash_blocking(self, file_path: Path) -> str:
        return file_hash(file_path)  # expect: SLP401

    def lookup(self, key: str) -> str | None:
        return self.results.get(key)
