"""From the project to findings: which rule codes a selection names, the rules run over every
call with an effect, and each hit placed in its file (deduplicated, ``# noqa`` applied, with
its fingerprint and excerpt)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..core.rules import RULES
from . import rules_async as _rules_async
from . import rules_clients as _rules_clients
from . import rules_loops as _rules_loops
from .effects import Project
from .hit import Hit
from .model import Finding

__all__ = ["ALL_CODES", "BY_CODE", "hits", "place", "rule_codes"]

BY_CODE = {r.code: r for r in RULES}
_NAMES = {r.name: r.code for r in RULES}
ALL_CODES = tuple(r.code for r in RULES)  # the catalogue is the one list of rules


def rule_codes(keys: Iterable[str], what: str) -> set[str]:
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


def hits(project: Project) -> dict[str, list[Hit]]:
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


def place(
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
        rule = BY_CODE.get(code)
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
