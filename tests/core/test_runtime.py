"""The runtime findings file: round trip, merge, concurrent writers, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slipstream._impl.core.errors import ConfigError
from slipstream._impl.core.runtime import VERSION, RuntimeFinding, dump, load

ROW = {
    "code": "SLP201",
    "path": "/a.py",
    "line": 1,
    "function": "f",
    "count": 1,
    "total_s": 0.5,
    "fingerprint": "select 1",
}


def finding(**over: object) -> RuntimeFinding:
    base: dict[str, object] = {
        "code": "SLP201",
        "path": "/app/orders.py",
        "line": 12,
        "function": "load_user",
        "count": 3,
        "total_s": 0.25,
        "fingerprint": "select * from users where id = ?",
    }
    base.update(over)
    return RuntimeFinding(**base)  # type: ignore[arg-type]


_WRITER = """
import sys
from slipstream._impl.core.runtime import RuntimeFinding, dump
sys.stdin.readline()  # both writers start together
for _ in range(int(sys.argv[2])):
    dump([RuntimeFinding(code="SLP201", path="/app/orders.py", line=12, function="f",
                         count=1, total_s=0.5, fingerprint="q")], sys.argv[1])
"""


class TestRoundTrip:
    def test_dump_then_load_gives_the_findings(self, tmp_path: Path) -> None:
        """What dump writes, load reads back equal, in a versioned JSON object."""
        items = [finding(), finding(code="SLP203", line=40, fingerprint="commit")]
        target = tmp_path / "runtime.json"
        dump(items, target)
        assert load(target) == items
        data = json.loads(target.read_text())
        assert data["version"] == VERSION == 1
        assert data["findings"][0]["path"] == "/app/orders.py"

    def test_dump_leaves_no_temporary_file(self, tmp_path: Path) -> None:
        """The write goes through a temporary file that is moved into place."""
        dump([finding()], tmp_path / "runtime.json")
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == ["runtime.json", "runtime.json.lock"]

    @settings(max_examples=50, deadline=None)
    @given(
        st.lists(
            st.builds(
                RuntimeFinding,
                code=st.sampled_from(["SLP201", "SLP202", "SLP203"]),
                path=st.text(min_size=1),
                line=st.integers(0, 10**6),
                function=st.text(),
                count=st.integers(0, 10**9),
                total_s=st.floats(0, 1e9, allow_nan=False),
                fingerprint=st.text(),
            ),
            unique_by=lambda f: f.key,
            max_size=8,
        )
    )
    def test_any_distinct_findings_survive_the_file(self, items: list[RuntimeFinding]) -> None:
        """Any list of distinct findings (unicode text, big counts) round trips exactly."""
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            target = os.path.join(folder, "runtime.json")
            dump(items, target)
            assert load(target) == items


class TestMerge:
    def test_same_site_and_fingerprint_add_up(self, tmp_path: Path) -> None:
        """A second dump of the same finding adds its count and seconds to the first."""
        target = tmp_path / "runtime.json"
        dump([finding(count=3, total_s=0.25)], target)
        dump([finding(count=4, total_s=0.5), finding(line=99)], target)
        got = load(target)
        assert got[0].count == 7
        assert got[0].total_s == pytest.approx(0.75)
        assert [f.line for f in got] == [12, 99]

    def test_duplicates_within_one_dump_merge(self, tmp_path: Path) -> None:
        """Two records of one finding in a single dump become one entry."""
        target = tmp_path / "runtime.json"
        dump([finding(count=1), finding(count=2)], target)
        assert [f.count for f in load(target)] == [3]

    def test_another_fingerprint_stays_apart(self, tmp_path: Path) -> None:
        """A different statement at the same line is its own finding."""
        target = tmp_path / "runtime.json"
        dump([finding(), finding(fingerprint="select 1")], target)
        assert len(load(target)) == 2

    def test_two_processes_lose_no_counts(self, tmp_path: Path) -> None:
        """Two processes dumping into one file at once: every count is kept (file lock)."""
        target = str(tmp_path / "runtime.json")
        rounds = 40
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _WRITER, target, str(rounds)], stdin=subprocess.PIPE
            )
            for _ in range(2)
        ]
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            p.stdin.close()
        for p in procs:
            assert p.wait(60) == 0
        (got,) = load(target)
        assert got.count == 2 * rounds
        assert got.total_s == pytest.approx(rounds)

    def test_dump_refuses_to_overwrite_a_foreign_file(self, tmp_path: Path) -> None:
        """An existing file that is not a runtime file raises and is left as it was."""
        target = tmp_path / "runtime.json"
        target.write_text("not json")
        with pytest.raises(ConfigError):
            dump([finding()], target)
        assert target.read_text() == "not json"

    def test_dump_rejects_other_items(self, tmp_path: Path) -> None:
        """Items that are not RuntimeFinding raise TypeError naming the parameter."""
        with pytest.raises(TypeError, match="findings"):
            dump([{"code": "SLP201"}], tmp_path / "x.json")  # type: ignore[list-item]


class TestErrors:
    @pytest.mark.parametrize(
        ("content", "problem"),
        [
            ("{nope", "not JSON"),
            ("[]", "expected a JSON object"),
            ('{"version": 2, "findings": []}', "version 2 is not supported"),
            ('{"version": 1}', "'findings' must be a list"),
            ('{"version": 1, "findings": [3]}', r"findings\[0\] must be an object"),
            (
                '{"version": 1, "findings": [{"code": "SLP201", "path": "/a.py"}]}',
                r"findings\[0\] lacks line, function, count, total_s, fingerprint",
            ),
            (
                json.dumps({"version": 1, "findings": [{**ROW, "line": "x"}]}),
                r"findings\[0\]\.line must be an integer",
            ),
            (
                json.dumps({"version": 1, "findings": [{**ROW, "count": True}]}),
                r"findings\[0\]\.count must be an integer",
            ),
            (
                json.dumps({"version": 1, "findings": [{**ROW, "code": 201}]}),
                r"findings\[0\]\.code must be a string",
            ),
            (
                json.dumps({"version": 1, "findings": [{**ROW, "total_s": -1}]}),
                r"findings\[0\]\.total_s must be a number of seconds",
            ),
        ],
    )
    def test_bad_files_name_the_file_and_the_problem(
        self, tmp_path: Path, content: str, problem: str
    ) -> None:
        """Each kind of bad file raises ConfigError with the file's path and what is wrong."""
        target = tmp_path / "bad.json"
        target.write_text(content)
        with pytest.raises(ConfigError, match=problem) as info:
            load(target)
        assert str(target) in str(info.value)
        assert info.value.key == "--runtime"

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file says so, with its path."""
        target = tmp_path / "absent.json"
        with pytest.raises(ConfigError, match="does not exist") as info:
            load(target)
        assert str(target) in str(info.value)
