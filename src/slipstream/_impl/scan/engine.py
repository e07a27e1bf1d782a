"""The scan's entry points: find the files, parse each once into facts (in worker processes,
through a cache keyed by content), join them into one project, run the rules, apply
suppressions and filters, and place each finding in its file."""

from __future__ import annotations

import ast
import fnmatch
import gc
import hashlib
import io
import os
import pickle
import sys
import tempfile
import tokenize
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.rules import RULES
from . import rules_async as _rules_async
from . import rules_clients as _rules_clients
from . import rules_loops as _rules_loops
from .effects import Project
from .facts import ModuleFacts, extract
from .hit import Hit
from .knowledge import Knowledge, extended
from .model import SEVERITIES, Finding, Severity

__all__ = ["DEFAULT_EXCLUDES", "FileError", "ScanReport", "scan", "scan_report"]

DEFAULT_EXCLUDES = (
    ".venv",
    "venv",
    "site-packages",
    "node_modules",
    "build",
    "dist",
    "__pycache__",
)
SCANNER_VERSION = "1"
MAX_BYTES = 4_000_000  # a larger .py file is generated code: skipped, and said so
_PARALLEL_MIN_FILES = 40


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


# -- files -------------------------------------------------------------------------------------


def _excluded(rel: str, patterns: Sequence[str]) -> bool:
    parts = rel.split("/")
    for p in patterns:
        if fnmatch.fnmatch(rel, p) or any(fnmatch.fnmatch(part, p) for part in parts):
            return True
    return False


def _discover(paths: Sequence[Path], root: Path, patterns: Sequence[str]) -> list[tuple[Path, str]]:
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


def _module_names(files: list[tuple[Path, str]]) -> dict[str, str]:
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


# -- phase 1 (worker side) ---------------------------------------------------------------------


def _decode(data: bytes) -> str:
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


def _facts_of(job: tuple[str, str, bytes, tuple[tuple[str, str], ...]]) -> ModuleFacts | str:
    """Facts of one file, or the reason it cannot be scanned (never raises)."""
    rel, _full, data, functions = job
    try:
        text = _decode(data)
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
    jobs: list[tuple[str, str, bytes, tuple[tuple[str, str], ...]]],
) -> list[ModuleFacts | str]:
    gc.disable()  # as in scan_report: no cycles to collect
    return [_facts_of(j) for j in jobs]


# -- the cache ---------------------------------------------------------------------------------


class _Cache:
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


# -- rules and placement -----------------------------------------------------------------------

_BY_CODE = {r.code: r for r in RULES}
_NAMES = {r.name: r.code for r in RULES}
ALL_CODES = tuple(r.code for r in RULES)  # the catalogue is the one list of rules


def _codes(keys: Iterable[str], what: str) -> set[str]:
    if isinstance(keys, str):
        keys = [keys]
    out: set[str] = set()
    for k in keys:
        for part in str(k).split(","):
            part = part.strip()
            if not part:
                continue
            code = part.upper() if part[:3].upper() == "SLP" else _NAMES.get(part)
            if code == "SLP" or (code and len(code) < 6):
                out.update(c for c in ALL_CODES if c.startswith(code))
                continue
            if code not in ALL_CODES:
                raise ValueError(f"{what!r} names an unknown rule {part!r}")
            out.add(code)
    return out


def _hits(project: Project) -> dict[str, list[Hit]]:
    by_path: dict[str, list[Hit]] = {}
    for q, f in project.funcs.items():
        path = project.func_path[q]
        out: list[Hit] = []
        for call in f.calls:
            effects = project.effects_of(call, f)
            if not effects:
                continue
            out += _rules_loops.check(project, f, call, effects)
            out += _rules_async.check(project, f, call, effects)
            out += _rules_clients.check(project, f, call, effects)
        out += _rules_async.check_gathers(project, f)
        if out:
            by_path.setdefault(path, []).extend(out)
    return by_path


def _normalised(lines: list[str], start: int, end: int) -> str:
    text = " ".join(lines[start - 1 : end]) if lines else ""
    return " ".join(text.split())


def _excerpt(lines: list[str], start: int, end: int) -> str:
    chunk = lines[start - 1 : min(end, start + 5)]
    if not chunk:
        return ""
    indent = min((len(x) - len(x.lstrip()) for x in chunk if x.strip()), default=0)
    return "\n".join(x[indent:] for x in chunk)


def _place(
    rel: str,
    root: Path,
    items: list[tuple[str, int, int, int, int, str, tuple]],  # type: ignore[type-arg]
    noqa: Mapping[int, frozenset[str] | None],
    wanted: set[str],
) -> list[Finding]:
    try:
        lines = (root / rel).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    seen: dict[tuple[str, int, int], None] = {}
    counts: dict[str, int] = {}
    out = []
    for code, line, col, end_line, end_col, message, chain in sorted(
        items, key=lambda x: (x[1], x[2], x[0])
    ):
        if code not in wanted or (code, line, col) in seen:
            continue
        seen[(code, line, col)] = None
        rule = _BY_CODE.get(code)
        name = rule.name if rule else code
        suppressed = False
        for n in {line, end_line}:
            if n in noqa:
                codes = noqa[n]
                if codes is None or code in codes or name in codes:
                    suppressed = True
        if suppressed:
            continue
        norm = _normalised(lines, line, end_line)
        key = f"{code}\0{rel}\0{norm}"
        counts[key] = counts.get(key, 0) + 1
        digest = hashlib.sha1(f"{key}\0{counts[key]}".encode()).hexdigest()[:16]
        out.append(
            Finding(
                code=code,
                name=name,
                path=rel,
                line=line,
                col=col,
                end_line=end_line,
                end_col=end_col,
                message=message,
                severity=rule.severity if rule else "medium",
                fix=rule.fix if rule else "",
                chain=chain,
                fingerprint=digest,
                excerpt=_excerpt(lines, line, end_line),
            )
        )
    return out


# -- the entry points --------------------------------------------------------------------------


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
    "invariant": [...], "io": [...]}``. ``jobs``: worker processes for parsing (default: the
    cores; 1: in this process). ``cache_dir``: where per-file facts are cached (None: no
    cache). ``root``: what finding paths are relative to (default: the common directory of
    ``paths``). The scanned code is never imported or run.
    """
    # ASTs and facts hold no reference cycles; the cyclic collector, triggered again and again
    # by millions of fresh nodes, tripled the time of a large scan (docs/decisions.md)
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _scan(paths, select, ignore, min_severity, exclude, knowledge, jobs, cache_dir, root)
    finally:
        if collecting:
            gc.enable()


def _scan(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    select: Iterable[str] | None,
    ignore: Iterable[str],
    min_severity: Severity,
    exclude: Iterable[str],
    knowledge: Mapping[str, Sequence[str]] | None,
    jobs: int | None,
    cache_dir: str | os.PathLike[str] | None,
    root: str | os.PathLike[str] | None,
) -> ScanReport:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not isinstance(paths, Sequence) or not paths:
        raise TypeError(f"'paths' must be a path or a non-empty list of paths, got {paths!r}")
    resolved = [Path(p).resolve() for p in paths]
    if root is None:
        common = Path(os.path.commonpath([str(p) for p in resolved]))
        root_path = common.parent if common.is_file() else common
    else:
        root_path = Path(root).resolve()
    if min_severity not in SEVERITIES:
        raise ValueError(
            f"'min_severity' must be one of {', '.join(SEVERITIES)}, got {min_severity!r}"
        )
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise ValueError(f"'jobs' must be a positive integer, got {jobs!r}")
    if isinstance(exclude, str):
        exclude = [exclude]
    patterns = [str(p).rstrip("/") for p in exclude]
    wanted = _codes(select, "select") if select is not None else set(ALL_CODES)
    wanted -= _codes(ignore, "ignore")
    floor = SEVERITIES.index(min_severity)
    wanted = {
        c
        for c in wanted
        if SEVERITIES.index(_BY_CODE[c].severity if c in _BY_CODE else "medium") >= floor
    }
    know: Knowledge = extended(knowledge)
    salt = hashlib.sha1(repr(sorted((knowledge or {}).items())).encode()).hexdigest()
    cache = _Cache(Path(cache_dir) if cache_dir is not None else None, salt)

    files = _discover(resolved, root_path, patterns)
    modules = _module_names(files)
    errors: list[FileError] = []
    facts: list[ModuleFacts] = []
    todo: list[tuple[str, str, bytes, tuple[tuple[str, str], ...]]] = []
    digests: dict[str, str] = {}
    extra_functions = tuple(sorted(know.functions.items())) if knowledge else ()
    datas: dict[str, bytes] = {}
    for full, rel in files:
        try:
            if full.stat().st_size > MAX_BYTES:
                errors.append(FileError(rel, f"skipped: larger than {MAX_BYTES // 1_000_000} MB"))
                continue
            data = full.read_bytes()
        except OSError as e:
            errors.append(FileError(rel, f"cannot read: {e.strerror or e}"))
            continue
        digest = hashlib.blake2b(data, digest_size=16).hexdigest() + modules[rel]
        digests[rel] = digest
        datas[rel] = data
    # an unchanged project (same files, contents, options) is answered from the result cache
    key = hashlib.sha1(
        repr(
            (
                SCANNER_VERSION,
                salt,
                str(root_path),
                sorted(wanted),
                sorted(digests.items()),
                [(e.path, e.reason) for e in errors],
            )
        ).encode()
    ).hexdigest()
    stored = cache.result(key)
    if stored is not None:
        findings_, errors_, nfiles, nlines = stored
        return ScanReport(str(root_path), findings_, errors_, nfiles, nlines)
    for _full, rel in files:
        if rel not in datas:
            continue
        digest, data = digests[rel], datas.pop(rel)
        hit = cache.get(rel, digest)
        if hit is None:
            todo.append((rel, modules[rel], data, extra_functions))
        elif isinstance(hit, str):
            errors.append(FileError(rel, hit))
        else:
            facts.append(hit)

    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    if workers > 1 and len(todo) >= _PARALLEL_MIN_FILES:
        size = max(8, len(todo) // (workers * 4))
        batches = [todo[i : i + size] for i in range(0, len(todo), size)]

        with ProcessPoolExecutor(workers, mp_context=_context()) as pool:
            results = [r for batch in pool.map(_facts_batch, batches) for r in batch]
    else:
        results = [_facts_of(j) for j in todo]
    for job, result in zip(todo, results, strict=True):
        rel = job[0]
        cache.put(rel, digests[rel], result)
        if isinstance(result, str):
            errors.append(FileError(rel, result))
        else:
            facts.append(result)
    cache.save(set(digests))

    project = Project(facts, know)
    project.build()
    hits = _hits(project)
    by_rel = {m.path: m for m in facts}
    findings: list[Finding] = []
    for rel, m in by_rel.items():
        items = [
            (h.code, h.call.line, h.call.col, h.call.end_line, h.call.end_col, h.message, h.chain)
            for h in hits.get(rel, ())
        ]
        items += [(x.code, x.line, x.col, x.end_line, x.end_col, x.message, ()) for x in m.local]
        if items:
            findings += _place(rel, root_path, items, m.noqa, wanted)
    findings.sort(key=lambda f: (f.path, f.line, f.col, f.code))
    errors.sort(key=lambda e: e.path)
    report = ScanReport(
        root=str(root_path),
        findings=tuple(findings),
        errors=tuple(errors),
        files=len(facts),
        lines=sum(m.lines for m in facts),
    )
    cache.save_result(key, (report.findings, report.errors, report.files, report.lines))
    return report


def scan(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = ".",
    **options: object,
) -> list[Finding]:
    """The findings of :func:`scan_report` (same arguments)."""
    return list(scan_report(paths, **options).findings)  # type: ignore[arg-type]
