"""``python -m slipstream scan`` end to end: the real engine, in a subprocess, on a tiny project
(formats, selection, the baseline and the cache, a broken file, SARIF against its schema)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).parents[2] / "src"

PROJECT = {
    "app/__init__.py": "",
    "app/db.py": """\
from sqlalchemy.orm import Session


def save_all(session: Session, users: list[object]) -> None:
    for u in users:
        session.add(u)
        session.commit()
""",
    "app/api.py": """\
import time


async def handler() -> str:
    time.sleep(1)
    return "ok"
""",
}


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run(
        [sys.executable, "-m", "slipstream", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A tiny project with a commit per item and a time.sleep in an async def."""
    for name, body in PROJECT.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    return tmp_path


def codes(findings: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((f["code"], f["path"]) for f in findings)


class TestEndToEnd:
    def test_json(self, project: Path) -> None:
        """``python -m slipstream scan`` finds the commit per item and the blocking sleep."""
        done = run(project, "scan", "--format", "json", "--no-cache")
        assert 1 == done.returncode, done.stderr
        assert [("SLP203", "app/db.py"), ("SLP401", "app/api.py")] == codes(json.loads(done.stdout))

    def test_select_and_text(self, project: Path) -> None:
        """--select narrows the real scan; the text names the line and the fix."""
        done = run(project, "scan", "app", "--select", "blocking-in-async", "--no-cache")
        assert 1 == done.returncode, done.stderr
        assert done.stdout.startswith("app/api.py:5:5: SLP401 blocking-in-async ")
        assert "fix: " in done.stdout

    def test_baseline_and_cache(self, project: Path) -> None:
        """A written baseline silences the scan (run twice: the second from the cache)."""
        first = run(project, "scan", "--write-baseline", "base.json")
        assert 0 == first.returncode, first.stderr
        again = run(project, "scan", "--baseline", "base.json")
        assert 0 == again.returncode, again.stdout + again.stderr
        assert (project / ".slipstream_cache").is_dir()

    def test_broken_file(self, project: Path) -> None:
        """A file that does not parse exits 2; the other files are still reported."""
        (project / "app" / "broken.py").write_text("def f(:\n")
        done = run(project, "scan", "--format", "json", "--no-cache")
        assert 2 == done.returncode
        assert "broken.py" in done.stderr
        assert 2 == len(json.loads(done.stdout))

    def test_sarif_valid(self, project: Path) -> None:
        """The real scan's SARIF validates against the official schema."""
        jsonschema = pytest.importorskip("jsonschema")
        schema_path = Path(__file__).parents[1] / "data" / "sarif-schema-2.1.0.json"
        done = run(project, "scan", "--format", "sarif", "--no-cache")
        assert 1 == done.returncode, done.stderr
        errors = list(
            jsonschema.Draft4Validator(json.loads(schema_path.read_text())).iter_errors(
                json.loads(done.stdout)
            )
        )
        assert [] == [e.message for e in errors]

    def test_python_m_slipstream_scan_help(self, tmp_path: Path) -> None:
        """``python -m slipstream scan --help`` works and lists the options."""
        done = run(tmp_path, "scan", "--help")
        assert 0 == done.returncode, done.stderr
        for option in ("--format", "--select", "--ignore", "--min-severity", "--baseline"):
            assert option in done.stdout
