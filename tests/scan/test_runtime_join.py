"""``slipstream scan --runtime FILE``: run-time findings joined with the static ones by call
site, on a real project tree and the real engine; the ranking, the "ran" and "not seen"
marks in every format, the unmatched section, and the CLI's exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from slipstream._impl.cli import main as cli
from slipstream._impl.core.runtime import RuntimeFinding, dump
from slipstream._impl.scan import report as _report
from slipstream._impl.scan.engine import ScanReport, scan_report
from slipstream._impl.scan.runtime_join import compatible, join

from .helpers import write

SCHEMA = Path(__file__).parents[1] / "data" / "sarif-schema-2.1.0.json"

PROJECT = {
    "app/__init__.py": "",
    "app/orders.py": """\
        import sqlite3


        def load_user(conn: sqlite3.Connection, user_id: int) -> tuple:
            return conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()


        def report(conn: sqlite3.Connection, ids: list[int]) -> list:
            out = []
            for user_id in ids:
                out.append(load_user(conn, user_id))
            return out


        def save(conn: sqlite3.Connection, rows: list[tuple]) -> None:
            for row in rows:
                conn.execute("INSERT INTO t VALUES (?)", row)
                conn.commit()
        """,
}
HELPER_QUERY_LINE = 5  # the query inside load_user, where the watchers see the N+1
LOOP_CALL_LINE = 11  # the static SLP201: load_user called per item
COMMIT_LINE = 18
WRITE_LINE = 17


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The small project, written in tmp_path/proj."""
    return write(tmp_path / "proj", PROJECT)


def seen(project: Path, **over: Any) -> RuntimeFinding:
    base: dict[str, Any] = {
        "code": "SLP201",
        "path": str(project / "app" / "orders.py"),
        "line": HELPER_QUERY_LINE,
        "function": "load_user",
        "count": 37,
        "total_s": 1.2,
        "fingerprint": "select * from users where id = ?",
    }
    base.update(over)
    return RuntimeFinding(**base)


def scanned(project: Path) -> ScanReport:
    return scan_report(project, root=project, jobs=1)


def joined(project: Path, *runtime: RuntimeFinding) -> ScanReport:
    return join(scanned(project), runtime, sources=("runtime.json",))


class TestJoin:
    def test_the_project_has_the_three_static_findings(self, project: Path) -> None:
        """Without --runtime the findings come in scan order: query, write, commit."""
        lines = [(f.code, f.line) for f in scanned(project).findings]
        assert lines == [("SLP201", LOOP_CALL_LINE), ("SLP202", WRITE_LINE), ("SLP203", 18)]

    def test_n_plus_one_in_the_helper_matches_the_loop_through_the_chain(
        self, project: Path
    ) -> None:
        """A run-time N+1 at the helper's query line is the static finding whose chain ends
        there: it gets the count and the seconds, and is ranked first."""
        report = joined(
            project,
            seen(project),
            seen(project, code="SLP203", line=COMMIT_LINE, count=3, total_s=0.002, function="save"),
        )
        first = report.findings[0]
        assert (first.code, first.line) == ("SLP201", LOOP_CALL_LINE)
        assert report.runtime is not None
        measured = report.runtime.by_finding()
        assert (measured[first].count, measured[first].total_s) == (37, 1.2)
        assert [f.line for f in report.findings] == [LOOP_CALL_LINE, COMMIT_LINE, WRITE_LINE]

    def test_ranked_by_time_then_count(self, project: Path) -> None:
        """The commit that cost more time comes before the N+1 that ran more often."""
        report = joined(
            project,
            seen(project, count=100, total_s=0.1),
            seen(project, code="SLP203", line=COMMIT_LINE, count=2, total_s=0.5, function="save"),
        )
        assert [f.code for f in report.findings][:2] == ["SLP203", "SLP201"]

    def test_records_of_one_site_add_up(self, project: Path) -> None:
        """Two statements at one call site (or one from two files) are summed on the finding."""
        report = joined(
            project, seen(project), seen(project, fingerprint="select 1", count=3, total_s=0.3)
        )
        assert report.runtime is not None
        m = report.runtime.by_finding()[report.findings[0]]
        assert m.count == 40
        assert m.total_s == pytest.approx(1.5)
        assert len(m.seen) == 2

    def test_unmatched_runtime_findings_are_kept(self, project: Path) -> None:
        """A run-time finding at a line no static finding covers is listed as unmatched."""
        stray = seen(project, line=2, function="elsewhere")
        report = joined(project, seen(project), stray)
        assert report.runtime is not None
        assert report.runtime.unmatched == (stray,)

    def test_an_incompatible_code_does_not_match(self, project: Path) -> None:
        """A run-time commit-in-loop at the helper's query line is not the N+1."""
        report = joined(project, seen(project, code="SLP203"))
        assert report.runtime is not None
        assert report.runtime.ran == ()
        assert len(report.runtime.unmatched) == 1

    def test_a_write_seen_as_a_query_matches_the_write(self, project: Path) -> None:
        """SLP201 at run time matches a static SLP202 at the same line (compatible codes)."""
        assert "SLP202" in compatible("SLP201")
        assert compatible("SLP203") == {"SLP203"}
        report = joined(project, seen(project, line=WRITE_LINE, function="save"))
        assert report.findings[0].code == "SLP202"

    def test_paths_are_compared_resolved(self, project: Path, tmp_path: Path) -> None:
        """A runtime path through a symbolic link to the project still matches."""
        link = tmp_path / "link"
        link.symlink_to(project, target_is_directory=True)
        report = joined(project, seen(project, path=str(link / "app" / "orders.py")))
        assert report.runtime is not None
        assert report.runtime.unmatched == ()

    def test_another_file_does_not_match(self, project: Path, tmp_path: Path) -> None:
        """The same line in another file is not this call site."""
        report = joined(project, seen(project, path=str(tmp_path / "other.py")))
        assert report.runtime is not None
        assert report.runtime.ran == ()


class TestFormats:
    @pytest.fixture
    def report(self, project: Path) -> ScanReport:
        return joined(
            project,
            seen(project),
            seen(project, line=2, function="elsewhere", count=5, total_s=0.05),
        )

    def test_text_marks_what_ran_and_what_did_not(self, report: ScanReport) -> None:
        """Text: "ran: 37 times, 1.2 s in the database", "not seen at run time", the
        unmatched section with its call site, and the summary's count."""
        text = _report.render(report, "text", color=False)
        lines = text.splitlines()
        assert lines[0].startswith(f"app/orders.py:{LOOP_CALL_LINE}:")
        assert "    ran: 37 times, 1.2 s in the database" in lines
        assert text.count("    not seen at run time") == 2
        at = lines.index("seen at run time, not found statically:")
        assert (
            lines[at + 1]
            == "    app/orders.py:2: SLP201 in elsewhere: 5 times, 50 ms in the database"
        )
        assert lines[-1].endswith("; 1 of 3 ran, 1 more seen only at run time")

    def test_rich_text_shows_the_same(self, report: ScanReport) -> None:
        """The coloured form carries the same ran line and section."""
        pytest.importorskip("rich")
        text = _report.render(report, "text", color=True)
        assert "ran: 37 times, 1.2 s in the database" in text
        assert "seen at run time, not found statically" in text

    def test_markdown_ranks_and_lists(self, report: ScanReport) -> None:
        """Markdown: a ranked table of what ran, the unmatched table, a Ran line per finding."""
        md = _report.render(report, "markdown")
        assert "## Ranked by what ran" in md
        assert f"| 1 | SLP201 `query-in-loop` | `app/orders.py:{LOOP_CALL_LINE}` | 37 times" in md
        assert "## Seen at run time, not found statically" in md
        assert "| SLP201 | `app/orders.py:2` | `elsewhere` |" in md
        assert "**Ran**: 37 times, 1.2 s in the database" in md
        assert md.count("*not seen at run time*") == 2

    def test_json_has_runtime_objects(self, report: ScanReport) -> None:
        """JSON: each finding has runtime {ran, count, total_s}; the unmatched one follows."""
        items = json.loads(_report.render(report, "json"))
        assert items[0]["runtime"] == {"ran": True, "count": 37, "total_s": 1.2}
        assert items[1]["runtime"] == {"ran": False, "count": 0, "total_s": 0.0}
        last = items[-1]
        assert (last["path"], last["line"], last["runtime"]["static"]) == (
            "app/orders.py",
            2,
            False,
        )
        assert len(items) == 4

    def test_json_without_runtime_is_unchanged(self, project: Path) -> None:
        """Without --runtime, no finding object has a runtime key."""
        items = json.loads(_report.render(scanned(project), "json"))
        assert all("runtime" not in item for item in items)

    def test_sarif_properties_valid_and_stable(self, report: ScanReport, project: Path) -> None:
        """SARIF: a properties bag per result, the unmatched one as a result, the log valid
        against the schema, and the fingerprints those of the unranked scan."""
        jsonschema = pytest.importorskip("jsonschema")
        log = json.loads(_report.render(report, "sarif"))
        jsonschema.Draft4Validator(json.loads(SCHEMA.read_text(encoding="utf-8"))).validate(log)
        results = log["runs"][0]["results"]
        assert results[0]["properties"] == {"ran": True, "count": 37, "total_s": 1.2}
        assert results[-1]["properties"]["static"] is False
        plain = json.loads(_report.render(scanned(project), "sarif"))["runs"][0]["results"]

        def prints(rs: list[dict[str, Any]]) -> dict[int, str]:
            return {
                r["locations"][0]["physicalLocation"]["region"]["startLine"]: r[
                    "partialFingerprints"
                ]["slipstream/v1"]
                for r in rs
            }

        assert {k: v for k, v in prints(results).items() if k != 2} == prints(plain)


class TestCli:
    @pytest.fixture
    def runtime_file(self, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        monkeypatch.chdir(project)
        target = tmp_path / "runtime.json"
        dump([seen(project)], target)
        return target

    def test_end_to_end(self, runtime_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """`slipstream scan --runtime FILE` prints the ranked report and still exits 1."""
        code = cli.main(["scan", "app", "--no-cache", "--runtime", str(runtime_file)])
        out = capsys.readouterr().out
        assert code == 1
        assert out.splitlines()[0].startswith(f"app/orders.py:{LOOP_CALL_LINE}:")
        assert "ran: 37 times, 1.2 s in the database" in out

    def test_several_files_add_up(
        self, runtime_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Two --runtime files recording the same finding are summed."""
        second = tmp_path / "second.json"
        dump([seen(Path.cwd(), count=3, total_s=0.8)], second)
        argv = ["scan", "app", "--no-cache", "--format", "json"]
        code = cli.main([*argv, "--runtime", str(runtime_file), "--runtime", str(second)])
        items = json.loads(capsys.readouterr().out)
        assert code == 1
        assert items[0]["runtime"]["count"] == 40
        assert items[0]["runtime"]["total_s"] == pytest.approx(2.0)

    def test_no_findings_still_exit_0(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A clean project with a runtime file exits 0 and lists what ran at run time."""
        clean = write(tmp_path / "clean", {"ok.py": "x = 1\n"})
        monkeypatch.chdir(clean)
        target = tmp_path / "rt.json"
        dump([seen(clean, path=str(clean / "ok.py"), line=1)], target)
        assert cli.main(["scan", ".", "--no-cache", "--runtime", str(target)]) == 0
        assert "seen at run time, not found statically:" in capsys.readouterr().out

    @pytest.mark.parametrize("content", ["{", '{"version": 9, "findings": []}', None])
    def test_bad_runtime_file_exits_2_with_one_line(
        self,
        project: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        content: str | None,
    ) -> None:
        """A missing, non-JSON or foreign runtime file: exit 2, one line naming the file."""
        monkeypatch.chdir(project)
        target = tmp_path / "bad.json"
        if content is not None:
            target.write_text(content)
        code = cli.main(["scan", "app", "--no-cache", "--runtime", str(target)])
        captured = capsys.readouterr()
        assert code == 2
        assert captured.out == ""
        (line,) = captured.err.splitlines()
        assert line.startswith("slipstream: error: --runtime: ")
        assert str(target) in line

    def test_baseline_findings_are_not_reported_as_unmatched(
        self, runtime_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A run-time finding matching a baselined static finding is neither shown nor listed
        as unmatched."""
        baseline = tmp_path / "baseline.json"
        assert cli.main(["scan", "app", "--no-cache", "--write-baseline", str(baseline)]) == 0
        capsys.readouterr()
        argv = ["scan", "app", "--no-cache", "--baseline", str(baseline)]
        assert cli.main([*argv, "--runtime", str(runtime_file)]) == 0
        out = capsys.readouterr().out
        assert "seen at run time" not in out
        assert os.path.exists(runtime_file)
