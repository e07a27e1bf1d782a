"""The scan's entry points: find the files, parse each once into facts (in worker processes,
through a cache keyed by content), join them into one project, run the rules, apply
suppressions and filters, and place each finding in its file."""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .cache import SCANNER_VERSION, FactsCache
from .discover import DEFAULT_EXCLUDES, discover, module_names
from .effects import Project
from .facts import ModuleFacts
from .findings import ALL_CODES, BY_CODE, place, rule_codes
from .findings import hits as rule_hits
from .knowledge import Knowledge, extended
from .model import SEVERITIES, Finding, RuntimeJoin, Severity
from .parse import Job, parse_all

__all__ = [
    "ALL_CODES",
    "DEFAULT_EXCLUDES",
    "MAX_BYTES",
    "FileError",
    "ScanReport",
    "scan",
    "scan_report",
]

MAX_BYTES = 4_000_000  # a larger .py file is generated code: skipped, and said so


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
    not be scanned, and how many files and lines were scanned. ``runtime`` is set when the
    scan was joined with run-time findings (``scan.runtime_join.join``); the findings that
    ran then come first, largest measured cost first."""

    root: str
    findings: tuple[Finding, ...]
    errors: tuple[FileError, ...]
    files: int
    lines: int
    runtime: RuntimeJoin | None = None


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
    wanted = rule_codes(select, "select") if select is not None else set(ALL_CODES)
    wanted -= rule_codes(ignore, "ignore")
    floor = SEVERITIES.index(min_severity)
    wanted = {
        c
        for c in wanted
        if SEVERITIES.index(BY_CODE[c].severity if c in BY_CODE else "medium") >= floor
    }
    know: Knowledge = extended(knowledge)
    salt = hashlib.sha1(repr(sorted((knowledge or {}).items())).encode()).hexdigest()
    cache = FactsCache(Path(cache_dir) if cache_dir is not None else None, salt)

    files = discover(resolved, root_path, patterns)
    modules = module_names(files)
    errors: list[FileError] = []
    facts: list[ModuleFacts] = []
    todo: list[Job] = []
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

    results = parse_all(todo, jobs)
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
    hits = rule_hits(project)
    by_rel = {m.path: m for m in facts}
    findings: list[Finding] = []
    for rel, m in by_rel.items():
        items = [
            (h.code, h.call.line, h.call.col, h.call.end_line, h.call.end_col, h.message, h.chain)
            for h in hits.get(rel, ())
        ]
        items += [(x.code, x.line, x.col, x.end_line, x.end_col, x.message, ()) for x in m.local]
        if items:
            findings += place(rel, root_path, items, m.noqa, wanted)
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
