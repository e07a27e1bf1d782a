"""slipstream scan's reporters (text, json, sarif, markdown) on hand-built findings (the
engine is tested on real files elsewhere, the settings and baseline in test_config)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from slipstream._impl.core import rules as _catalogue
from slipstream._impl.scan.engine import FileError, ScanReport
from slipstream._impl.scan.model import ChainStep, Finding
from slipstream._impl.scan.report import fingerprint, render

from .helpers import make_finding

SCHEMA = Path(__file__).parents[1] / "data" / "sarif-schema-2.1.0.json"


def make_report(
    findings: tuple[Finding, ...] = (),
    errors: tuple[FileError, ...] = (),
    root: str = "/tmp/project",
) -> ScanReport:
    return ScanReport(root=root, findings=findings, errors=errors, files=3, lines=120)


CHAIN = (ChainStep("app/repo.py", 30, "load_user"), ChainStep("app/db.py", 4, "fetch"))


def sample() -> ScanReport:
    """One finding of each severity, one through a chain, and one file that did not parse."""
    return make_report(
        (
            make_finding("SLP201", "app/api.py", 12, chain=CHAIN, severity="high"),
            make_finding("SLP301", "app/api.py", 40, severity="medium"),
            make_finding("SLP501", "app/cache.py", 3, severity="low"),
        ),
        (FileError("app/broken.py", "syntax error: invalid syntax (line 2)"),),
    )


class TestText:
    def test_plain_lines(self) -> None:
        """Each finding is ``path:line:col: CODE name message``, then ``fix:`` and ``via``."""
        text = render(sample(), "text", color=False)
        lines = text.splitlines()
        first = make_finding("SLP201", "app/api.py", 12)
        assert f"app/api.py:12:9: SLP201 query-in-loop {first.message}" == lines[0]
        assert f"    fix: {first.fix}" == lines[1]
        assert "    via app/repo.py:30 load_user" == lines[2]
        assert "    via app/db.py:4 fetch" == lines[3]
        assert "error: app/broken.py: syntax error: invalid syntax (line 2)" in lines
        assert "\x1b[" not in text

    def test_summary_counts(self) -> None:
        """The last line counts findings per severity, files and lines, and unscanned files."""
        last = render(sample(), "text", color=False).splitlines()[-1]
        expected = (
            "3 findings (1 high, 1 medium, 1 low) in 3 files (120 lines); "
            "1 file could not be scanned"
        )
        assert expected == last
        assert "No findings in 3 files (120 lines)" == render(make_report(), "text").strip()

    def test_plain_when_not_a_terminal(self, capsys: pytest.CaptureFixture[str]) -> None:
        """With ``color=None`` the text is plain when standard output is not a terminal."""
        assert "\x1b[" not in render(sample(), "text")

    def test_colour_groups_by_file(self) -> None:
        """With colour (rich installed) each file gets one heading over its findings."""
        pytest.importorskip("rich")
        text = render(sample(), "text", color=True)
        assert "\x1b[" in text
        assert 1 == text.count("app/api.py\x1b") + text.count("app/api.py\n")
        assert "SLP301" in text
        assert "could not be scanned" in text


class TestJson:
    def test_exact_fields(self) -> None:
        """A list of objects with exactly the documented fields; chain steps as strings."""
        body = json.loads(render(sample(), "json"))
        assert 3 == len(body)
        expected_keys = {
            "code",
            "name",
            "path",
            "line",
            "col",
            "end_line",
            "end_col",
            "message",
            "severity",
            "fix",
            "chain",
        }
        assert all(expected_keys == set(item) for item in body)
        first = body[0]
        assert ("SLP201", "query-in-loop", "app/api.py") == (
            first["code"],
            first["name"],
            first["path"],
        )
        assert (12, 8, 13, 30, "high") == (
            first["line"],
            first["col"],
            first["end_line"],
            first["end_col"],
            first["severity"],
        )
        assert ["app/repo.py:30 load_user", "app/db.py:4 fetch"] == first["chain"]
        assert [] == body[1]["chain"]

    def test_empty(self) -> None:
        """No findings: an empty list."""
        assert [] == json.loads(render(make_report(), "json"))


def sarif(report: ScanReport) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(render(report, "sarif"))
    return log


class TestSarif:
    def test_valid_against_the_official_schema(self) -> None:
        """The log validates against the OASIS SARIF 2.1.0 schema (with and without results)."""
        jsonschema = pytest.importorskip("jsonschema")
        schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
        validator = jsonschema.Draft4Validator(schema)
        for report in (sample(), make_report()):
            errors = sorted(validator.iter_errors(sarif(report)), key=str)
            assert [] == [f"{list(e.absolute_path)}: {e.message}" for e in errors]

    def test_driver_and_rules(self) -> None:
        """tool.driver names slipstream and lists the catalogue with levels and help."""
        driver = sarif(sample())["runs"][0]["tool"]["driver"]
        assert "slipstream" == driver["name"]
        assert driver["version"]
        ids = [r["id"] for r in driver["rules"]]
        assert [r.code for r in _catalogue.RULES] == ids
        slp201 = driver["rules"][ids.index("SLP201")]
        r = _catalogue.rule("SLP201")
        assert "query-in-loop" == slp201["name"]
        assert r.summary == slp201["shortDescription"]["text"]
        assert r.doc() == slp201["help"]["markdown"]
        level = {"high": "error", "medium": "warning", "low": "note"}[r.severity]
        assert level == slp201["defaultConfiguration"]["level"]

    def test_results(self) -> None:
        """Levels map high/medium/low to error/warning/note; columns are 1-based; paths are
        relative to SRCROOT; the chain is given as related locations and a code flow."""
        run = sarif(sample())["runs"][0]
        results = run["results"]
        assert ["error", "warning", "note"] == [r["level"] for r in results]
        first = results[0]
        assert "SLP201" == first["ruleId"]
        loc = first["locations"][0]["physicalLocation"]
        assert {"uri": "app/api.py", "uriBaseId": "SRCROOT"} == loc["artifactLocation"]
        region = loc["region"]
        assert (12, 9, 13, 31) == (
            region["startLine"],
            region["startColumn"],
            region["endLine"],
            region["endColumn"],
        )
        related = [
            (r["physicalLocation"]["artifactLocation"]["uri"], r["physicalLocation"]["region"])
            for r in first["relatedLocations"]
        ]
        assert [("app/repo.py", {"startLine": 30}), ("app/db.py", {"startLine": 4})] == related
        flow = first["codeFlows"][0]["threadFlows"][0]["locations"]
        assert 3 == len(flow)
        assert "relatedLocations" not in results[1]
        assert run["originalUriBaseIds"]["SRCROOT"]["uri"].startswith("file:///")

    def test_file_errors_are_notifications(self) -> None:
        """Files that could not be scanned are invocations[0].toolExecutionNotifications."""
        invocation = sarif(sample())["runs"][0]["invocations"][0]
        assert invocation["executionSuccessful"] is False
        (note,) = invocation["toolExecutionNotifications"]
        assert "error" == note["level"]
        assert "app/broken.py" in note["message"]["text"]
        clean = sarif(make_report())["runs"][0]["invocations"][0]
        assert clean["executionSuccessful"] is True

    def test_fingerprints_stable(self) -> None:
        """partialFingerprints are equal across two runs and when the finding's lines move, and
        two findings with the same fingerprint in one file stay distinct."""

        def prints(report: ScanReport) -> list[str]:
            return [
                r["partialFingerprints"]["slipstream/v1"]
                for r in sarif(report)["runs"][0]["results"]
            ]

        twice = make_report((make_finding(line=10), make_finding(line=20)))
        assert prints(twice) == prints(twice)
        moved = make_report((make_finding(line=15), make_finding(line=27)))
        assert prints(twice) == prints(moved)
        assert 2 == len(set(prints(twice)))
        other = make_report((make_finding(line=10, fingerprint="something else"),))
        assert prints(other)[0] != prints(twice)[0]
        assert fingerprint(make_finding()) == prints(twice)[0]


class TestMarkdown:
    def test_sections(self) -> None:
        """A title, the summary by severity and by rule, then High / Medium / Low sections."""
        text = render(sample(), "markdown")
        assert text.startswith("# Performance scan report\n")
        assert "## Summary" in text
        assert "| High | 1 |" in text
        assert "| **Total** | **3** |" in text
        heads = [line for line in text.splitlines() if line.startswith("## ")]
        assert [
            "## Summary",
            "## 1. High priority",
            "## 2. Medium priority",
            "## 3. Low priority",
            "## Could not be scanned",
        ] == heads
        assert text.index("query-in-loop") < text.index("await-in-loop")

    def test_finding_body(self) -> None:
        """Each finding has its location, chain and code; each rule why and before / after."""
        text = render(sample(), "markdown")
        r = _catalogue.rule("SLP201")
        assert "**Location**: `app/api.py:12-13`, column 9" in text
        assert "- `app/repo.py:30` `load_user`" in text
        assert "```python\nrow = session.execute(select(User).where(User.id == uid))\n```" in text
        assert f"**Why it costs time**: {r.why}" in text
        assert r.example.strip().splitlines()[0] in text
        assert r.fixed.strip().splitlines()[0] in text
        assert "- `app/broken.py`: syntax error" in text

    def test_empty_sections_say_so(self) -> None:
        """A severity with nothing found still has its section."""
        text = render(make_report((make_finding(severity="high"),)), "markdown")
        assert "## 3. Low priority\n\nNo findings." in text


class TestEveryFormat:
    def test_unknown_format(self) -> None:
        """An unknown format is a ValueError naming the known ones."""
        with pytest.raises(ValueError, match="text, json, sarif, markdown"):
            render(make_report(), "html")

    def test_unknown_code_falls_back_to_the_finding(self) -> None:
        """A finding whose code the catalogue lacks still renders in every format."""
        odd = dataclasses.replace(make_finding(), code="SLP999", name="new-rule")
        report = make_report((odd,))
        for fmt in ("text", "json", "sarif", "markdown"):
            assert "SLP999" in render(report, fmt)
