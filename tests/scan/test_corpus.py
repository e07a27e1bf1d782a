"""slipstream scan's labelled corpus: precision and recall per rule and overall.

Each direct subdirectory of ``tests/scan_corpus/`` is one small project, scanned on its own.
Expected findings are comments on the reported line: ``# expect: SLP201`` (several:
``# expect: SLP202, SLP203``). Designed negatives, lines a naive scanner would flag, carry
``# ok: SLP201 <why>``; no finding of that code may land on them. Markers are read with
``tokenize``, so text that only looks like a marker inside a string does not count. A finding
matches a marker with the same code whose line is within ``[finding.line, finding.end_line]``.
"""

from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from slipstream._impl.scan import RULES, Finding, ScanReport, scan_report

CORPUS = Path(__file__).parents[1] / "scan_corpus"
PROJECTS = sorted(p.name for p in CORPUS.iterdir() if p.is_dir() and not p.name.startswith("."))

CODES = tuple(r.code for r in RULES)

# Files that must be reported in ``report.errors`` (and skipped), relative to their project.
BROKEN = {
    "broken": {
        "app/syntax_error.py",
        "app/py2_print.py",
        "app/nul_bytes.py",
        "app/undecodable.py",
    }
}

MIN_PRECISION = 0.95
MIN_RECALL = 0.90
MIN_CASES = 5

_MARKER = re.compile(r"(?<![\w-])(expect|ok):\s*(SLP\d{3}(?:\s*,\s*SLP\d{3})*)")
_CODE = re.compile(r"SLP\d{3}")


@dataclass(frozen=True, slots=True)
class Marker:
    project: str
    path: str  # relative to the project, "/"-separated
    line: int
    code: str

    def __str__(self) -> str:
        return f"{self.project}/{self.path}:{self.line} {self.code}"


def parse_markers(source: bytes) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """``(expect, ok)``: the ``(line, code)`` pairs of the markers in ``source``'s comments.

    Raises what ``tokenize`` raises on a file it cannot read (the broken files)."""
    expect: list[tuple[int, str]] = []
    ok: list[tuple[int, str]] = []
    for tok in tokenize.tokenize(io.BytesIO(source).readline):
        if tok.type != tokenize.COMMENT:
            continue
        for kind, codes in _MARKER.findall(tok.string):
            target = expect if kind == "expect" else ok
            target.extend((tok.start[0], code) for code in _CODE.findall(codes))
    return expect, ok


def _python_files(project: str) -> Iterable[tuple[str, Path]]:
    root = CORPUS / project
    for path in sorted(root.rglob("*.py")):
        yield path.relative_to(root).as_posix(), path


@functools.cache
def markers(project: str) -> tuple[tuple[Marker, ...], tuple[Marker, ...]]:
    """Every ``# expect:`` and ``# ok:`` marker of one project (broken files have none)."""
    expect: list[Marker] = []
    ok: list[Marker] = []
    for rel, path in _python_files(project):
        if rel in BROKEN.get(project, ()):
            continue
        e, o = parse_markers(path.read_bytes())
        expect += [Marker(project, rel, line, code) for line, code in e]
        ok += [Marker(project, rel, line, code) for line, code in o]
    return tuple(expect), tuple(ok)


@functools.cache
def scanned(project: str) -> ScanReport:
    return scan_report(CORPUS / project, jobs=1, cache_dir=None)


def _source_line(project: str, path: str, line: int) -> str:
    try:
        lines = (CORPUS / project / path).read_text(encoding="utf-8").splitlines()
        return lines[line - 1].strip()
    except (OSError, UnicodeDecodeError, IndexError):
        return "?"


def _describe(project: str, f: Finding) -> str:
    chain = f" via {' -> '.join(str(s) for s in f.chain)}" if f.chain else ""
    return f"{project}/{f.path}:{f.line} {f.code} {f.message}{chain}"


@dataclass
class Outcome:
    tp: Counter[str]
    fp: list[tuple[str, Finding]]
    fn: list[Marker]


def match(project: str, findings: Iterable[Finding], expected: Iterable[Marker]) -> Outcome:
    """Pair findings with markers one to one (same code and path, marker line within the
    finding's lines; the marker closest to the finding's start wins)."""
    unmatched = list(expected)
    tp: Counter[str] = Counter()
    fp: list[tuple[str, Finding]] = []
    for f in sorted(findings, key=lambda f: (f.path, f.line, f.col, f.code)):
        candidates = [
            m
            for m in unmatched
            if m.code == f.code and m.path == f.path and f.line <= m.line <= max(f.end_line, f.line)
        ]
        if candidates:
            best = min(candidates, key=lambda m: m.line - f.line)
            unmatched.remove(best)
            tp[f.code] += 1
        else:
            fp.append((project, f))
    return Outcome(tp, fp, unmatched)


def _ratio(num: int, den: int) -> float:
    return num / den if den else 1.0


def _table(tp: Counter[str], fp: Counter[str], fn: Counter[str]) -> str:
    rows = [f"{'rule':<8} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>9} {'recall':>7}"]
    for code in [*CODES, "overall"]:
        if code == "overall":
            t, p, n = sum(tp.values()), sum(fp.values()), sum(fn.values())
        else:
            t, p, n = tp[code], fp[code], fn[code]
        rows.append(
            f"{code:<8} {t:>4} {p:>4} {n:>4} {_ratio(t, t + p):>9.3f} {_ratio(t, t + n):>7.3f}"
        )
    return "\n".join(rows)


# ---- checks that need no engine: the corpus itself ----------------------------------------


def test_markers_are_read_from_comments_only() -> None:
    """A `# expect:` inside a string is not a marker; one in a comment is."""
    source = (
        b'EXAMPLE = "for x in xs: session.get(x)  # expect: SLP201"\n'
        b"doc = '''\n# expect: SLP203\n'''\n"
        b"x = 1  # expect: SLP202, SLP203  # ok: SLP301 why\n"
        b"y = 2  # ok: SLP101,SLP102 reason\n"
    )
    expect, ok = parse_markers(source)
    assert [(5, "SLP202"), (5, "SLP203")] == expect
    assert [(5, "SLP301"), (6, "SLP101"), (6, "SLP102")] == ok


def test_corpus_files_parse() -> None:
    """Every corpus file but the deliberately broken ones parses."""
    bad = []
    for project in PROJECTS:
        for rel, path in _python_files(project):
            if rel in BROKEN.get(project, ()):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                try:
                    ast.parse(path.read_bytes(), filename=str(path), feature_version=(3, 11))
                except (SyntaxError, SyntaxWarning, ValueError) as exc:
                    bad.append(f"{project}/{rel}: {exc}")
    assert [] == bad


def test_corpus_markers_are_consistent() -> None:
    """Markers name known rules, and no line both expects and excludes one code."""
    problems = []
    for project in PROJECTS:
        expect, ok = markers(project)
        unknown = sorted({str(m) for m in (*expect, *ok) if m.code not in CODES})
        problems += [f"unknown code: {m}" for m in unknown]
        both = {(m.path, m.line, m.code) for m in expect} & {(m.path, m.line, m.code) for m in ok}
        problems += [f"{project}/{p}:{line} {c} is both expected and ok" for p, line, c in both]
    for project, files in BROKEN.items():
        for rel in files:
            try:
                e, o = parse_markers((CORPUS / project / rel).read_bytes())
            except Exception:  # the broken files may not even tokenize
                continue
            if e or o:
                problems.append(f"{project}/{rel}: a broken file must carry no markers")
    assert [] == problems


def test_every_rule_has_positives_and_negatives() -> None:
    """Each rule has at least 5 expected findings and 5 `# ok:` negatives in the corpus."""
    positives: Counter[str] = Counter()
    negatives: Counter[str] = Counter()
    for project in PROJECTS:
        expect, ok = markers(project)
        positives.update(m.code for m in expect)
        negatives.update(m.code for m in ok)
    short = [
        f"{code}: {positives[code]} positives, {negatives[code]} ok-negatives"
        for code in CODES
        if positives[code] < MIN_CASES or negatives[code] < MIN_CASES
    ]
    assert [] == short, f"each rule needs >= {MIN_CASES} of each"


# ---- checks of the engine against the corpus ------------------------------------------------


def test_corpus_precision_and_recall() -> None:
    """Per rule and overall, precision is at least 0.95 and recall at least 0.90 over the labelled
    corpus."""
    tp: Counter[str] = Counter()
    fps: list[tuple[str, Finding]] = []
    fns: list[Marker] = []
    unexpected_errors: list[str] = []
    for project in PROJECTS:
        report = scanned(project)
        expected, _ = markers(project)
        outcome = match(project, report.findings, expected)
        tp.update(outcome.tp)
        fps += outcome.fp
        fns += outcome.fn
        broken = BROKEN.get(project, set())
        unexpected_errors += [f"{project}/{e}" for e in report.errors if e.path not in broken]
    fp = Counter(f.code for _, f in fps)
    fn = Counter(m.code for m in fns)
    table = _table(tp, fp, fn)
    print(f"\nslipstream scan corpus ({len(PROJECTS)} projects)\n{table}")

    failing = []
    for code in [*CODES, None]:
        t = sum(tp.values()) if code is None else tp[code]
        p = sum(fp.values()) if code is None else fp[code]
        n = sum(fn.values()) if code is None else fn[code]
        precision, recall = _ratio(t, t + p), _ratio(t, t + n)
        if precision < MIN_PRECISION or recall < MIN_RECALL:
            failing.append(f"{code or 'overall'}: precision {precision:.3f}, recall {recall:.3f}")
    if failing or unexpected_errors:
        lines = [
            f"below precision {MIN_PRECISION} / recall {MIN_RECALL}:",
            *failing,
            "",
            table,
            "",
            f"false positives ({len(fps)}):",
            *(_describe(project, f) for project, f in fps),
            "",
            f"false negatives ({len(fns)}):",
            *(f"{m}  | {_source_line(m.project, m.path, m.line)}" for m in fns),
        ]
        if unexpected_errors:
            lines += ["", "files reported as errors that should parse:", *unexpected_errors]
        pytest.fail("\n".join(lines), pytrace=False)


def test_no_finding_on_ok_lines() -> None:
    """No finding of a code lands on a line marked `# ok:` for that code."""
    hits = []
    for project in PROJECTS:
        _, ok = markers(project)
        by_place: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
        for m in ok:
            by_place[(m.path, m.code)].append(m.line)
        for f in scanned(project).findings:
            hits.extend(
                f"{_describe(project, f)}  (marked ok on line {line})"
                for line in by_place.get((f.path, f.code), ())
                if f.line <= line <= max(f.end_line, f.line)
            )
    if hits:
        message = "\n".join([f"findings on lines marked ok ({len(hits)}):", *hits])
        pytest.fail(message, pytrace=False)


def test_broken_files_are_errors_and_the_rest_is_scanned() -> None:
    """The broken project's bad files are exactly the report's errors, each with a reason, and its
    valid files are scanned."""
    for project, broken in BROKEN.items():
        report = scanned(project)
        errors = {e.path: e.reason for e in report.errors}
        assert broken == set(errors), f"{project}: errors {errors}"
        assert all(reason.strip() for reason in errors.values()), errors
        valid = [rel for rel, _ in _python_files(project) if rel not in broken]
        assert report.files >= len(valid)
        expected, _ = markers(project)
        assert expected, f"{project} needs expected findings in its valid files"
        outcome = match(project, report.findings, expected)
        assert [] == [str(m) for m in outcome.fn]
        assert [] == [_describe(p, f) for p, f in outcome.fp]
        assert not any(f.path in broken for f in report.findings)
