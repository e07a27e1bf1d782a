"""Helpers the scanner's tests share: a project written from a dict of sources, findings
reduced to (code, path, line), and a finding built by hand as the engine would make it."""

from __future__ import annotations

import textwrap
from pathlib import Path

from slipstream._impl.core import rules as _catalogue
from slipstream._impl.scan.model import ChainStep, Finding, Severity


def write(root: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
    return root


def codes(findings: list[Finding]) -> list[tuple[str, str, int]]:
    return [(f.code, f.path, f.line) for f in findings]


def make_finding(
    code: str = "SLP201",
    path: str = "app/db.py",
    line: int = 10,
    *,
    col: int = 8,
    severity: Severity | None = None,
    chain: tuple[ChainStep, ...] = (),
    fingerprint: str = "",
    excerpt: str = "",
    message: str = "",
) -> Finding:
    """A finding as the engine would make it, for rule ``code``."""
    r = _catalogue.rule(code)
    return Finding(
        code=r.code,
        name=r.name,
        path=path,
        line=line,
        col=col,
        end_line=line + 1,
        end_col=30,
        message=message or f"{r.name} at line {line}",
        severity=severity or r.severity,
        fix=r.fix,
        chain=chain,
        fingerprint=fingerprint or f"{r.code}-{path}-stmt",
        excerpt=excerpt or "row = session.execute(select(User).where(User.id == uid))",
    )
