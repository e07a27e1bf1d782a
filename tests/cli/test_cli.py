"""The slipstream command: run, resume and status of a user's pipeline, and clear usage errors."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from slipstream import __version__
from slipstream._impl.cli import main as cli

JOB = """
import asyncio
import sqlite3
from pathlib import Path

import slipstream as ss

HERE = Path(__file__).parent
FAIL = {3, 9}


def flush(rows):
    conn = sqlite3.connect(HERE / "out.sqlite")
    with conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INT)")
        conn.executemany("INSERT OR REPLACE INTO t VALUES (?, ?)", rows)
    conn.close()


async def work(n):
    await asyncio.sleep(0)
    if n in FAIL and not (HERE / "fixed").exists():
        raise ValueError(f"item {n} is bad")
    return (str(n), n * 10)


def pipeline():
    return ss.Pipeline(range(20), [ss.Stage(work)], flush,
                       checkpoint=ss.Checkpoint(HERE / "ckpt.sqlite"), run_id="default")
"""


def slipstream(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).parents[2]
    env = dict(os.environ, PYTHONPATH=str(root / "src"), SLIPSTREAM_EXAMPLES=str(root / "examples"))
    return subprocess.run(
        [sys.executable, "-m", "slipstream", *args],
        capture_output=True,
        text=True,
        cwd=tmp,
        env=env,
        timeout=60,
    )


def last_json(out: str) -> dict[str, object]:
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_run_status_and_retry_failed(tmp_path: Path) -> None:
    """`run` reports failures with exit 1, `status` shows them, and `run --retry-failed`


    finishes with exit 0."""
    (tmp_path / "job.py").write_text(JOB)
    first = slipstream(tmp_path, "run", "job.py:pipeline", "--run-id", "r1")
    assert 1 == first.returncode, first.stderr  # items failed
    report = last_json(first.stdout)
    assert (18, 2, "finished") == (report["ok"], report["failed"], report["state"])
    assert 0 == report["failures_left_out"]
    status = slipstream(tmp_path, "status", "job.py:pipeline", "--run-id", "r1")
    assert 0 == status.returncode, status.stderr
    body = last_json(status.stdout)
    assert (18, 2) == (body["done"], body["failed"])
    assert ["3", "9"] == [f["key"] for f in body["failures"]]  # type: ignore[union-attr]
    assert "item 3 is bad" in status.stderr
    (tmp_path / "fixed").touch()
    again = slipstream(tmp_path, "run", "job.py:pipeline", "--run-id", "r1", "--retry-failed")
    assert 0 == again.returncode, again.stderr
    assert 2 == last_json(again.stdout)["ok"]
    conn = sqlite3.connect(tmp_path / "out.sqlite")
    assert 20 == conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]
    conn.close()
    resumed = slipstream(tmp_path, "resume", "job.py:pipeline", "--run-id", "r1")
    assert (0, 0, 20) == (
        resumed.returncode,
        last_json(resumed.stdout)["ok"],
        last_json(resumed.stdout)["already_done"],
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nothing"], "must be 'module:attribute'"),
        (["run", "missing.py:p"], "no such file"),
        (["run", "job.py:nope"], "has no attribute 'nope'"),
        (["run", "job.py:HERE"], "not an ss.Pipeline"),
        (["resume", "job.py:pipeline", "--run-id", "never"], "nothing to resume"),
        (["status", "job.py:pipeline", "--run-id", "never"], "not in the checkpoint"),
    ],
)
def test_usage_errors_are_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    """Each usage error is one `slipstream: error:` line naming the problem, exit status 2."""
    (tmp_path / "job.py").write_text(JOB)
    result = slipstream(tmp_path, *args)
    assert 2 == result.returncode
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.realtime
@pytest.mark.parametrize("runner", ["local", "dask"])
def test_demo_runs_one_shape_end_to_end(tmp_path: Path, runner: str) -> None:
    """`slipstream demo` runs one shape end to end, locally and on Dask, and exits 0."""
    if runner == "dask":
        pytest.importorskip("distributed")
    result = slipstream(
        tmp_path,
        "demo",
        "--assets",
        "3",
        "--schemas",
        "1",
        "--quiet",
        "--output",
        "out",
        "--runner",
        runner,
    )
    assert 0 == result.returncode, result.stderr
    assert "every result verified" in result.stdout
    assert ("(dask)" in result.stdout) == (runner == "dask")
    assert (tmp_path / "out" / "timeline.png").stat().st_size > 5_000


def test_demo_with_an_unreachable_endpoint_is_one_clear_line(tmp_path: Path) -> None:
    """The demo against an endpoint that is down exits 2 with one clear line."""
    result = slipstream(tmp_path, "demo", "--endpoint", "http://127.0.0.1:1", "--quiet")
    assert 2 == result.returncode
    assert "does not answer /v1/models" in result.stderr
    assert "Traceback" not in result.stderr


NOT_READY_JOB = """
import slipstream as ss
from pathlib import Path

HERE = Path(__file__).parent


class NotReady(Exception):
    pass


async def fetch(n):
    if n % 2:
        return n
    try:
        raise ConnectionResetError("peer reset")
    except ConnectionResetError as exc:
        raise NotReady(f"doc-{n}") from exc


NO_BUDGET = ss.RetryBudget(ratio=0, min_per_s=0, max_balance=1)


def pipeline():
    retry = ss.Retry(attempts=3, on=NotReady, initial_s=0, jitter=False, budget=NO_BUDGET)
    return ss.Pipeline(range(4), [ss.Stage(fetch, retry=retry)],
                       checkpoint=ss.Checkpoint(HERE / "ckpt.sqlite"), run_id="r")
"""


class TestFailureReasonsInTheCommand:
    def test_run_and_status_show_the_note_and_the_cause(self, tmp_path: Path) -> None:
        """Why a retry gave up and what caused the error reach the run's JSON and
        'slipstream status' (which showed 'NotReady: doc-0' and nothing else)."""
        (tmp_path / "nr.py").write_text(NOT_READY_JOB)
        run = slipstream(tmp_path, "run", "nr.py:pipeline", "--no-progress")
        assert 1 == run.returncode, run.stderr
        expected = (
            "NotReady: doc-0\n"
            "  note: slipstream: gave up after 1 attempt(s): retry budget spent\n"
            "  caused by: ConnectionResetError: peer reset"
        )
        failures = last_json(run.stdout)["failures"]
        first = failures[0]  # type: ignore[index]
        assert ("0", "fetch", expected) == (first["key"], first["stage"], first["error"])
        assert "retry budget spent" in run.stderr  # the rendered report lists it too
        status = slipstream(tmp_path, "status", "nr.py:pipeline")
        assert 0 == status.returncode, status.stderr
        assert expected == last_json(status.stdout)["failures"][0]["error"]  # type: ignore[index]
        assert (
            "  failed 0 at fetch: NotReady: doc-0\n"
            "    note: slipstream: gave up after 1 attempt(s): retry budget spent\n"
            "    caused by: ConnectionResetError: peer reset\n"
        ) in status.stderr


def test_version_and_plain_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`slipstream --version` prints the installed version; the help has no rST markup."""
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert 0 == done.value.code
    assert f"slipstream {__version__}\n" == capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "``" not in capsys.readouterr().out


def test_status_without_a_run_id_lists_the_runs(tmp_path: Path) -> None:
    """`slipstream status` with no --run-id, when the pipeline's own run id has no run, lists
    the runs the checkpoint knows instead of failing on it."""
    (tmp_path / "job.py").write_text(JOB)
    for run_id in ("r1", "r2"):
        assert 1 == slipstream(tmp_path, "run", "job.py:pipeline", "--run-id", run_id).returncode
    status = slipstream(tmp_path, "status", "job.py:pipeline")
    assert 0 == status.returncode, status.stderr
    runs = last_json(status.stdout)["runs"]
    assert [("r1", 18, 2), ("r2", 18, 2)] == [
        (r["run_id"], r["done"], r["failed"])  # type: ignore[index]
        for r in runs  # type: ignore[union-attr]
    ]
    assert "no run 'default'; the checkpoint has 2:" in status.stderr


def test_the_json_line_caps_its_failures(tmp_path: Path) -> None:
    """A run with 150 failures prints the first 100 in its JSON line and says it left 50 out."""
    job = JOB.replace("FAIL = {3, 9}", "FAIL = set(range(150))").replace("range(20)", "range(160)")
    (tmp_path / "job.py").write_text(job)
    run = slipstream(tmp_path, "run", "job.py:pipeline", "--no-progress")
    assert 1 == run.returncode, run.stderr
    report = last_json(run.stdout)
    assert (150, 100, 50) == (
        report["failed"],
        len(report["failures"]),  # type: ignore[arg-type]
        report["failures_left_out"],
    )


class TestDemoDiscovery:
    """`slipstream demo` finds the demo in the working tree, never inside its own install."""

    FAKE_RUN = "def main(argv, prog):\n    print(f'{prog} ran with {argv}')\n    return 0\n"

    def test_found_from_a_subfolder_of_a_checkout(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """From any folder inside a checkout, the nearest examples/annotation/run.py runs."""
        (tmp_path / "examples" / "annotation").mkdir(parents=True)
        (tmp_path / "examples" / "annotation" / "run.py").write_text(self.FAKE_RUN)
        (tmp_path / "deep" / "er").mkdir(parents=True)
        monkeypatch.chdir(tmp_path / "deep" / "er")
        monkeypatch.delenv("SLIPSTREAM_EXAMPLES", raising=False)
        assert 0 == cli.main(["demo", "--assets", "2"])
        assert "slipstream demo ran with ['--assets', '2']" in capsys.readouterr().out

    def test_outside_a_checkout_is_one_clear_line(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Outside a checkout the command says how to get the demo and exits 2."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("SLIPSTREAM_EXAMPLES", raising=False)
        assert 2 == cli.main(["demo"])
        err = capsys.readouterr().err
        assert "git clone the repository and run 'make demo'" in err
        assert "SLIPSTREAM_EXAMPLES" in err

    def test_a_wrong_examples_folder_is_named(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """SLIPSTREAM_EXAMPLES pointing at a folder without the demo is an error naming it."""
        monkeypatch.setenv("SLIPSTREAM_EXAMPLES", str(tmp_path))
        assert 2 == cli.main(["demo"])
        assert f"SLIPSTREAM_EXAMPLES={str(tmp_path)!r} has no" in capsys.readouterr().err
