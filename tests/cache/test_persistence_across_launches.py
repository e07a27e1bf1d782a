"""A persistent cache remembers across launch modes: `python file.py` and `slipstream run`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import slipstream as ss

SCRIPT = """
import asyncio, os, sys
import slipstream as ss

CACHE = ss.Cache(sqlite_path=os.environ["CACHE_DB"], ttl_s=3600)


@ss.cached(CACHE{name})
async def {function}(text: str) -> str:
    with open(os.environ["CALLS_LOG"], "a") as log:
        log.write(text + "\\n")  # one line per real (paid) call
    return text.upper()


async def classify(text: str) -> str:
    return await {function}(text)


pipeline = ss.Pipeline(source=["a", "b", "c"], stages=[ss.Stage(classify)], key=str)

if __name__ == "__main__":
    asyncio.run(pipeline.run())
"""


def launch(tmp: Path, script: Path, mode: str) -> None:
    env = {**os.environ, "CACHE_DB": str(tmp / "llm.sqlite"), "CALLS_LOG": str(tmp / "calls")}
    src = Path(__file__).parents[2] / "src"
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    if mode == "python":
        args = [sys.executable, str(script)]
    else:
        args = [sys.executable, "-m", "slipstream", "run", f"{script}:pipeline", "--no-progress"]
    done = subprocess.run(args, env=env, cwd=tmp, capture_output=True, text=True, timeout=60)
    assert 0 == done.returncode, done.stderr


def calls(tmp: Path) -> int:
    log = tmp / "calls"
    return len(log.read_text().splitlines()) if log.exists() else 0


def write(path: Path, function: str = "ask_llm", name: str = "") -> Path:
    path.write_text(textwrap.dedent(SCRIPT.format(function=function, name=name)))
    return path


class TestLaunchModes:
    @pytest.mark.parametrize("first", ["python", "slipstream"])
    def test_one_sqlite_file_serves_both_launch_modes(self, tmp_path: Path, first: str) -> None:
        """The same file run as `python fast.py` and as `slipstream run fast.py:pipeline`
        stores under one key: the second launch pays no call."""
        script = write(tmp_path / "fast.py")
        second = "slipstream" if first == "python" else "python"
        launch(tmp_path, script, first)
        assert 3 == calls(tmp_path)
        launch(tmp_path, script, second)
        assert 3 == calls(tmp_path)

    def test_an_explicit_name_survives_a_rename(self, tmp_path: Path) -> None:
        """With name=..., renaming the function and its file keeps every entry."""
        name = ', name="llm-answers"'
        launch(tmp_path, write(tmp_path / "fast.py", "ask_llm", name), "python")
        assert 3 == calls(tmp_path)
        launch(tmp_path, write(tmp_path / "renamed.py", "classify_text", name), "slipstream")
        assert 3 == calls(tmp_path)

    def test_the_default_name_of_a_script_is_its_import_name(self) -> None:
        """stable_name() of a function defined in __main__ is what it would be if imported."""
        from slipstream._impl.cache.decorator import stable_name

        assert f"{__name__}.TestLaunchModes" == stable_name(TestLaunchModes)
        assert "slipstream.Cache" == stable_name(ss.Cache)  # its public name: layout-proof

    def test_name_and_version_together_are_refused(self) -> None:
        """name= is the whole namespace, so a version beside it is a TypeError with a HINT."""
        with pytest.raises(TypeError, match="HINT"):
            ss.cached(name="answers", version=2)
