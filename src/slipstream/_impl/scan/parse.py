"""Phase 1, the worker side: decode and parse one file's bytes and reduce the tree to facts,
never raising (a file that cannot be scanned gives the reason instead); and the pool of worker
processes that does it for many files at once."""

from __future__ import annotations

import ast
import gc
import io
import os
import sys
import tokenize
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from .facts import ModuleFacts, extract

__all__ = ["Job", "decode", "facts_of", "parse_all"]

# (path relative to the root, module name, the file's bytes, the user's knowledge functions)
Job = tuple[str, str, bytes, tuple[tuple[str, str], ...]]
_PARALLEL_MIN_FILES = 40


def decode(data: bytes) -> str:
    if b"\x00" in data:
        raise ValueError("the file contains NUL bytes")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as e:
        if "invalid or missing" in str(e):
            raise ValueError(
                "cannot decode as utf-8, and no encoding declaration says what it is"
            ) from None
        raise ValueError(f"bad encoding declaration: {e}") from None
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as e:
        raise ValueError(f"cannot decode as {encoding}: {e}") from None


def facts_of(job: Job) -> ModuleFacts | str:
    """Facts of one file, or the reason it cannot be scanned (never raises)."""
    rel, _full, data, functions = job
    try:
        text = decode(data)
        tree = ast.parse(text, filename=rel)
    except SyntaxError as e:
        hint = " (Python 2 code?)" if e.msg and "Missing parentheses" in e.msg else ""
        return f"syntax error at line {e.lineno}: {e.msg}{hint}"
    except (ValueError, MemoryError, RecursionError) as e:
        return str(e) or type(e).__name__
    module = _full
    package = rel.endswith("__init__.py")
    # whatever ast.parse can build, the walk can read (Python-to-Python recursion costs no C
    # stack on 3.11+); the limit is restored after
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    try:
        return extract(tree, module, rel, package, text, dict(functions) if functions else None)
    except RecursionError:
        return "too deeply nested to analyse"
    except Exception as e:  # a scanner bug must not stop the scan: say which file
        return f"internal error while analysing: {type(e).__name__}: {e}"
    finally:
        sys.setrecursionlimit(limit)


def _context() -> Any:
    """How to start the workers: fork when this process has one thread (the CLI: fastest, no
    import again), the forkserver when it has more (forking a process whose other threads
    hold locks can deadlock the child), the platform's default elsewhere."""
    import multiprocessing
    import threading

    if os.name != "posix":
        return None
    return multiprocessing.get_context("fork" if threading.active_count() == 1 else "forkserver")


def _facts_batch(
    jobs: list[Job],
) -> list[ModuleFacts | str]:
    gc.disable()  # as in scan_report: no cycles to collect
    return [facts_of(j) for j in jobs]


def parse_all(todo: list[Job], jobs: int | None) -> list[ModuleFacts | str]:
    """The facts (or the reason) of each job, in order: in ``jobs`` worker processes (default:
    the cores) when there are enough files to pay for starting them, else in this process."""
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    if workers > 1 and len(todo) >= _PARALLEL_MIN_FILES:
        size = max(8, len(todo) // (workers * 4))
        batches = [todo[i : i + size] for i in range(0, len(todo), size)]
        with ProcessPoolExecutor(workers, mp_context=_context()) as pool:
            return [r for batch in pool.map(_facts_batch, batches) for r in batch]
    return [facts_of(j) for j in todo]
