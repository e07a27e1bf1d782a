"""``slipstream scan`` and ``slipstream rule``: options, pyproject.toml settings, baselines and
exit codes, as wiring tests on a stand-in engine (end-to-end runs: test_cli_end_to_end)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from slipstream._impl.cli import main as cli
from slipstream._impl.core import rules as _catalogue
from slipstream._impl.scan import engine as _engine
from slipstream._impl.scan.engine import FileError, ScanReport
from slipstream._impl.scan.model import SEVERITIES, Finding

from .helpers import make_finding


class FakeEngine:
    """Stands in for ``scan_report``: records its arguments and returns ``findings`` filtered
    the way the engine does (select, ignore, min_severity)."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.errors: list[FileError] = []
        self.calls: list[dict[str, Any]] = []

    def __call__(self, paths: Any, **kwargs: Any) -> ScanReport:
        self.calls.append({"paths": paths, **kwargs})
        select, ignore = kwargs["select"], set(kwargs["ignore"])
        floor = SEVERITIES.index(kwargs["min_severity"])
        kept = tuple(
            f
            for f in self.findings
            if (select is None or f.code in select)
            and f.code not in ignore
            and SEVERITIES.index(f.severity) >= floor
        )
        return ScanReport(
            root=str(kwargs["root"]),
            findings=kept,
            errors=tuple(self.errors),
            files=2,
            lines=40,
        )

    @property
    def last(self) -> dict[str, Any]:
        return self.calls[-1]


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeEngine:
    """A stand-in engine, with the current directory an empty project in tmp_path."""
    fake = FakeEngine()
    monkeypatch.setattr(_engine, "scan_report", fake)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    return fake


def scan(*args: str) -> int:
    return cli.main(["scan", *args])


def sample() -> list[Finding]:
    """One finding of each severity (built when called, after the catalogue fixture)."""
    return [
        make_finding("SLP201", "app/api.py", 12, severity="high"),
        make_finding("SLP301", "app/api.py", 40, severity="medium"),
        make_finding("SLP501", "app/cache.py", 3, severity="low"),
    ]


class TestExitCodes:
    def test_no_findings(self, engine: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
        """0 when nothing is found."""
        assert 0 == scan()
        assert "No findings" in capsys.readouterr().out

    def test_findings(self, engine: FakeEngine) -> None:
        """1 when something is found."""
        engine.findings = sample()
        assert 1 == scan()

    def test_unreadable_file(self, engine: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
        """2 when a file could not be parsed; the rest is still reported."""
        engine.findings = sample()
        engine.errors = [FileError("bad.py", "syntax error: invalid syntax (line 1)")]
        assert 2 == scan()
        out = capsys.readouterr().out
        assert "error: bad.py: syntax error" in out
        assert "SLP201" in out

    def test_missing_path(self, engine: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
        """A path that does not exist is a usage error."""
        assert 2 == scan("nowhere")
        assert "no such file or directory: nowhere" in capsys.readouterr().err
        assert [] == engine.calls

    def test_bad_jobs(self, engine: FakeEngine) -> None:
        """--jobs 0 is an argparse usage error (exit 2)."""
        with pytest.raises(SystemExit) as caught:
            scan("--jobs", "0")
        assert 2 == caught.value.code


class TestSelection:
    def test_defaults(self, engine: FakeEngine, tmp_path: Path) -> None:
        """Default: scan '.', every rule, from low up, cache under the project."""
        scan()
        call = engine.last
        assert (["."], None, (), "low", ()) == (
            call["paths"],
            call["select"],
            call["ignore"],
            call["min_severity"],
            call["exclude"],
        )
        assert tmp_path.resolve() == Path(call["root"])
        assert tmp_path.resolve() / ".slipstream_cache" == Path(call["cache_dir"])
        assert call["jobs"] is None
        assert call["knowledge"] is None

    def test_select_by_code_and_name(self, engine: FakeEngine) -> None:
        """--select takes codes and names, comma-separated and repeated; the engine gets codes."""
        engine.findings = sample()
        assert 1 == scan("--select", "SLP201,unbounded-cache", "--select", "blocking-in-async")
        assert ("SLP201", "SLP401", "SLP501") == engine.last["select"]
        assert 0 == scan("--select", "dangling-task")

    def test_ignore_by_code_and_name(
        self, engine: FakeEngine, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--ignore takes codes and names; what is ignored is not reported."""
        engine.findings = sample()
        assert 1 == scan("--ignore", "query-in-loop", "--ignore", "SLP301")
        assert ("SLP201", "SLP301") == engine.last["ignore"]
        out = capsys.readouterr().out
        assert "SLP201" not in out
        assert "SLP501" in out
        assert 0 == scan("--ignore", "SLP2,SLP3,SLP5")

    def test_unknown_rules(self, engine: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
        """Unknown codes or names are a usage error naming each of them."""
        assert 2 == scan("--select", "SLP201,SLP999", "--ignore", "x")
        err = capsys.readouterr().err
        assert "--select" in err
        assert "'SLP999'" in err
        assert [] == engine.calls
        assert 2 == scan("--ignore", "query-in-a-loop")
        assert "'query-in-a-loop'" in capsys.readouterr().err

    def test_min_severity(self, engine: FakeEngine) -> None:
        """--min-severity is passed to the engine."""
        engine.findings = sample()[2:]
        assert 0 == scan("--min-severity", "medium")
        assert "medium" == engine.last["min_severity"]
        assert 1 == scan("--min-severity", "low")

    def test_exclude_jobs_no_cache(self, engine: FakeEngine) -> None:
        """--exclude (repeatable), --jobs and --no-cache reach the engine."""
        scan("--exclude", "migrations/*", "--exclude", "*_pb2.py", "--jobs", "3", "--no-cache")
        call = engine.last
        assert ("migrations/*", "*_pb2.py") == call["exclude"]
        assert 3 == call["jobs"]
        assert call["cache_dir"] is None

    def test_paths_and_root(self, engine: FakeEngine, tmp_path: Path) -> None:
        """Several paths are one project; findings are relative to the current folder when
        the paths are inside it (as a terminal or an editor opens them), else to the paths'
        common folder."""
        for name in ("svc/a", "svc/b"):
            (tmp_path / name).mkdir(parents=True)
        (tmp_path / "svc" / "b" / "m.py").write_text("x = 1\n")
        scan("svc/a", "svc/b/m.py")
        assert ["svc/a", "svc/b/m.py"] == engine.last["paths"]
        assert tmp_path.resolve() == Path(engine.last["root"])
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        os.chdir(elsewhere)
        scan(str(tmp_path / "svc/a"), str(tmp_path / "svc/b/m.py"))
        assert (tmp_path / "svc").resolve() == Path(engine.last["root"])


class TestConfigFile:
    CONFIG = """
[tool.slipstream.scan]
select = ["SLP2", "unbounded-cache"]
ignore = ["SLP203"]
exclude = ["generated/*"]
min-severity = "medium"
format = "json"
jobs = 2
cache = false

[tool.slipstream.scan.knowledge]
commit = ["myapp.db.save_all"]
"""

    def test_values_from_pyproject(
        self, engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """[tool.slipstream.scan] supplies every option the command line leaves out."""
        (tmp_path / "pyproject.toml").write_text(self.CONFIG)
        engine.findings = sample()
        assert 1 == scan()
        call = engine.last
        assert ("SLP201", "SLP202", "SLP203", "SLP501") == call["select"]
        assert ("SLP203",) == call["ignore"]
        assert ("generated/*",) == call["exclude"]
        assert ("medium", 2, None) == (call["min_severity"], call["jobs"], call["cache_dir"])
        assert {"commit": ("myapp.db.save_all",)} == dict(call["knowledge"])
        body = json.loads(capsys.readouterr().out)
        assert ["SLP201"] == [f["code"] for f in body]

    def test_command_line_wins(
        self, engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An option given on the command line replaces the file's value."""
        (tmp_path / "pyproject.toml").write_text(self.CONFIG)
        engine.findings = sample()
        args = ["--select", "SLP3", "--ignore", "SLP501", "--min-severity", "low"]
        args += ["--format", "text", "--jobs", "5", "--exclude", "x/*"]
        assert 1 == scan(*args)
        call = engine.last
        assert ("SLP301", "SLP302") == call["select"]
        assert ("SLP501",) == call["ignore"]
        assert ("low", 5, ("x/*",)) == (call["min_severity"], call["jobs"], call["exclude"])
        assert capsys.readouterr().out.startswith("app/api.py:40:9: SLP301 await-in-loop")

    def test_config_found_above_the_scan_root(self, engine: FakeEngine, tmp_path: Path) -> None:
        """The nearest pyproject.toml at or above the scanned folder is read."""
        (tmp_path / "pyproject.toml").write_text(self.CONFIG)
        (tmp_path / "src" / "app").mkdir(parents=True)
        scan("src/app")
        assert ("SLP203",) == engine.last["ignore"]

    def test_bad_value(
        self, engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bad value in the file is a usage error naming the key."""
        (tmp_path / "pyproject.toml").write_text('[tool.slipstream.scan]\nmin-severity = "hot"\n')
        assert 2 == scan()
        err = capsys.readouterr().err
        assert "slipstream: error: min-severity: must be one of low, medium, high" in err
        assert [] == engine.calls


class TestBaseline:
    def test_round_trip_with_shifted_lines(
        self, engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--write-baseline then --baseline: known findings are not reported after their
        lines moved; a new one is."""
        engine.findings = sample()
        assert 0 == scan("--write-baseline", "baseline.json")
        assert "wrote 3 finding(s)" in capsys.readouterr().err
        engine.findings = [dataclasses.replace(f, line=f.line + 7) for f in sample()]
        assert 0 == scan("--baseline", "baseline.json")
        capsys.readouterr()
        new = make_finding("SLP203", "app/jobs.py", 8)
        engine.findings.append(new)
        assert 1 == scan("--baseline", "baseline.json", "--format", "json")
        body = json.loads(capsys.readouterr().out)
        assert [("SLP203", "app/jobs.py")] == [(f["code"], f["path"]) for f in body]

    def test_bad_baseline(self, engine: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
        """A baseline that cannot be read is a usage error, before anything is scanned."""
        Path("baseline.json").write_text("{")
        assert 2 == scan("--baseline", "baseline.json")
        assert "cannot read the baseline" in capsys.readouterr().err
        assert [] == engine.calls


class TestFormats:
    def test_json_field_set(self, engine: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
        """--format json prints the findings' documented fields, nothing more."""
        engine.findings = sample()
        assert 1 == scan("--format", "json")
        body = json.loads(capsys.readouterr().out)
        keys = {"code", "name", "path", "line", "col", "end_line", "end_col"}
        keys |= {"message", "severity", "fix", "chain"}
        assert [keys] * 3 == [set(f) for f in body]

    def test_output_file(self, engine: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
        """--output writes the report to a file (plain) and nothing to stdout."""
        engine.findings = sample()
        engine.errors = [FileError("bad.py", "NUL byte")]
        assert 2 == scan("--format", "sarif", "--output", "scan.sarif")
        captured = capsys.readouterr()
        assert "" == captured.out
        assert "slipstream: cannot scan bad.py: NUL byte" in captured.err
        log = json.loads(Path("scan.sarif").read_text())
        assert 3 == len(log["runs"][0]["results"])

    def test_markdown(self, engine: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
        """--format markdown prints the report with its High / Medium / Low sections."""
        engine.findings = sample()
        assert 1 == scan("--format", "markdown")
        out = capsys.readouterr().out
        for heading in ("## 1. High priority", "## 2. Medium priority", "## 3. Low priority"):
            assert heading in out

    def test_text_plain_when_piped(
        self, engine: FakeEngine, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Text to a pipe (not a terminal) has no colour codes."""
        engine.findings = sample()
        scan()
        out = capsys.readouterr().out
        assert "\x1b[" not in out
        assert out.splitlines()[0].startswith("app/api.py:12:9: SLP201 query-in-loop ")
        assert out.splitlines()[1].startswith("    fix: ")


class TestRule:
    def test_by_name_and_code(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``slipstream rule query-in-loop`` and ``rule SLP201`` print the rule's doc."""
        assert 0 == cli.main(["rule", "query-in-loop"])
        by_name = capsys.readouterr().out
        assert _catalogue.rule("SLP201").doc() == by_name
        assert by_name.startswith("# SLP201 query-in-loop")
        assert 0 == cli.main(["rule", "slp201"])
        assert by_name == capsys.readouterr().out

    def test_list(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``slipstream rule`` lists every rule: code, name, severity, summary."""
        assert 0 == cli.main(["rule"])
        lines = capsys.readouterr().out.splitlines()
        assert [r.code for r in _catalogue.RULES] == [line.split()[0] for line in lines]
        first = _catalogue.RULES[0]
        assert [first.code, first.name, first.severity] == lines[0].split()[:3]
        assert lines[0].endswith(first.summary)

    def test_unknown(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown rule exits 2 and lists the known codes."""
        assert 2 == cli.main(["rule", "SLP999"])
        assert "no rule 'SLP999'" in capsys.readouterr().err


def test_pre_commit_hook() -> None:
    """.pre-commit-hooks.yaml declares the slipstream-scan hook on Python files."""
    text = (Path(__file__).parents[2] / ".pre-commit-hooks.yaml").read_text()
    for line in (
        "- id: slipstream-scan",
        "entry: slipstream scan",
        "language: python",
        "types: [python]",
        "pass_filenames: true",
    ):
        assert line in text
