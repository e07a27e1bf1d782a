"""The layer contracts in pyproject.toml hold on the real tree, and they bite: an import that
crosses a layer, or closes a circle, breaks the check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    if not LINT.exists():
        pytest.skip("lint-imports is not installed: run `make venv`")
    env = dict(os.environ, PYTHONPATH=str(root / "src"))
    return subprocess.run(
        [str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=120,
    )


def test_the_tree_keeps_every_contract() -> None:
    """Every contract is kept on the tree as it is."""
    result = lint_imports(REPO)
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "scan/engine.py",
            "from ..cache import cache as _cache_for_the_test",
            "the scanner stands on core alone",
        ),
        (
            "core/keys.py",
            "from ..flow import retry as _retry_for_the_test",
            "concept packages stand in layers",
        ),
        (
            "cache/cache.py",
            "from ..db import loader as _loader_for_the_test",
            "concept packages stand in layers",
        ),
        (
            "core/outcome.py",
            "from . import results as _results_for_the_test",
            "no import circles",
        ),
    ],
)
def test_a_crossing_import_breaks_the_check(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    """An import that a contract forbids, added to a copy of the tree, fails the check and the
    report names the contract it broke."""
    shutil.copytree(REPO / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "slipstream" / "_impl" / module
    text = target.read_text()
    head, sep, rest = text.partition("\nfrom __future__ import annotations\n")
    assert sep, f"{module} has no `from __future__ import annotations` to insert after"
    target.write_text(head + sep + line + "\n" + rest)
    result = lint_imports(tmp_path)
    assert 0 != result.returncode
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout
