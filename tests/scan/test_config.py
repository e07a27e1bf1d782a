"""slipstream scan's settings: ``[tool.slipstream.scan]`` in pyproject.toml (found above the
scan root, every key checked) and the baseline of findings already known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slipstream._impl.scan.config import (
    ConfigError,
    filter_baseline,
    find_pyproject,
    load_config,
    read_baseline,
    resolve_rules,
    write_baseline,
)

from .helpers import make_finding


def write_pyproject(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pyproject.toml"
    path.write_text(body, encoding="utf-8")
    return path


class TestConfig:
    def test_values(self, tmp_path: Path) -> None:
        """Every key of [tool.slipstream.scan] is read; rule names become codes."""
        write_pyproject(
            tmp_path,
            """
[tool.slipstream.scan]
select = ["query-in-loop", "SLP4"]
ignore = ["SLP501"]
exclude = ["migrations/*"]
min-severity = "medium"
format = "sarif"
jobs = 3
cache = false

[tool.slipstream.scan.knowledge]
query = ["myapp.db.fetch_one"]
blocking = ["myapp.storage.download", "vendor.sdk.Client.get"]
""",
        )
        config = load_config(tmp_path)
        assert ("SLP201", "SLP401") == config.select
        assert ("SLP501",) == config.ignore
        assert ("migrations/*",) == config.exclude
        assert ("medium", "sarif", 3, False) == (
            config.min_severity,
            config.format,
            config.jobs,
            config.cache,
        )
        assert {
            "query": ("myapp.db.fetch_one",),
            "blocking": ("myapp.storage.download", "vendor.sdk.Client.get"),
        } == dict(config.knowledge)
        assert tmp_path / "pyproject.toml" == config.source

    def test_nearest_pyproject_at_or_above(self, tmp_path: Path) -> None:
        """The nearest pyproject.toml at or above the scan root is the one read."""
        write_pyproject(tmp_path, '[tool.slipstream.scan]\nformat = "json"\n')
        inner = write_pyproject(tmp_path / "svc", '[tool.slipstream.scan]\nformat = "markdown"\n')
        deep = tmp_path / "svc" / "app" / "api"
        deep.mkdir(parents=True)
        assert inner == find_pyproject(deep)
        assert "markdown" == load_config(deep).format
        assert "json" == load_config(tmp_path).format

    def test_defaults(self, tmp_path: Path) -> None:
        """No table: every rule, severity low, text, cache on."""
        write_pyproject(tmp_path, "[project]\nname = 'x'\n")
        config = load_config(tmp_path)
        assert (None, (), "low", "text", None, True) == (
            config.select,
            config.ignore,
            config.min_severity,
            config.format,
            config.jobs,
            config.cache,
        )

    @pytest.mark.parametrize(
        ("line", "key"),
        [
            ('min-severity = "urgent"', "min-severity"),
            ('format = "html"', "format"),
            ("jobs = 0", "jobs"),
            ('jobs = "4"', "jobs"),
            ('cache = "yes"', "cache"),
            ('select = ["SLP999"]', "select"),
            ("ignore = [1]", "ignore"),
            ('selct = ["SLP201"]', "selct"),
            ("knowledge = { fetch = ['a.b'] }", "knowledge.fetch"),
            ("knowledge = { query = ['not a name'] }", "knowledge.query"),
        ],
    )
    def test_bad_value_names_the_key(self, tmp_path: Path, line: str, key: str) -> None:
        """A bad value is a ConfigError naming the key and the file."""
        write_pyproject(tmp_path, f"[tool.slipstream.scan]\n{line}\n")
        with pytest.raises(ConfigError) as caught:
            load_config(tmp_path)
        assert key == caught.value.key
        assert str(caught.value).startswith(f"{key}: ")
        assert "pyproject.toml" in str(caught.value)

    def test_not_toml(self, tmp_path: Path) -> None:
        """A pyproject.toml that does not parse is a ConfigError."""
        write_pyproject(tmp_path, "[tool.slipstream.scan\n")
        with pytest.raises(ConfigError, match="cannot be read"):
            load_config(tmp_path)

    def test_resolve_rules(self) -> None:
        """Codes (any case), names and code prefixes; unknown keys are all named."""
        assert ("SLP201", "SLP401") == resolve_rules(["blocking-in-async", "slp201"], "k", "s")
        assert ("SLP501", "SLP502", "SLP503") == resolve_rules(["SLP5"], "k", "s")
        with pytest.raises(ConfigError, match="'SLP999', 'nope'") as caught:
            resolve_rules(["SLP999", "SLP201", "nope"], "--select", "the command line")
        assert "--select" == caught.value.key


class TestBaseline:
    def test_round_trip_with_shifted_lines(self, tmp_path: Path) -> None:
        """Findings in the baseline are filtered even when their lines moved; new ones stay."""
        base = tmp_path / "baseline.json"
        old = [make_finding(line=10), make_finding("SLP401", "app/io.py", 5)]
        assert 2 == write_baseline(base, old)
        moved = [make_finding(line=14), make_finding("SLP401", "app/io.py", 9)]
        assert [] == filter_baseline(moved, base)
        new = make_finding("SLP203", "app/db.py", 50)
        assert [new] == filter_baseline([*moved, new], base)

    def test_multiplicity(self, tmp_path: Path) -> None:
        """Two identical findings in the baseline absorb two, not three."""
        base = tmp_path / "baseline.json"
        write_baseline(base, [make_finding(line=1), make_finding(line=2)])
        entries = json.loads(base.read_text())["findings"]
        assert [
            {
                "code": "SLP201",
                "path": "app/db.py",
                "fingerprint": "SLP201-app/db.py-stmt",
                "count": 2,
            }
        ] == entries
        three = [make_finding(line=n) for n in (5, 6, 7)]
        assert [three[2]] == filter_baseline(three, base)

    def test_sorted_and_keyed_without_lines(self, tmp_path: Path) -> None:
        """Entries are sorted and hold code, path, fingerprint and count only."""
        base = tmp_path / "baseline.json"
        write_baseline(base, [make_finding("SLP401", "b.py"), make_finding("SLP201", "a.py")])
        entries = json.loads(base.read_text())["findings"]
        assert [("SLP201", "a.py"), ("SLP401", "b.py")] == [(e["code"], e["path"]) for e in entries]
        assert all({"code", "path", "fingerprint", "count"} == set(e) for e in entries)

    def test_another_path_or_code_does_not_match(self, tmp_path: Path) -> None:
        """The key is code + path + fingerprint."""
        base = tmp_path / "baseline.json"
        write_baseline(base, [make_finding()])
        other_path = make_finding(path="app/other.py", fingerprint="SLP201-app/db.py-stmt")
        assert [other_path] == filter_baseline([other_path], base)

    @pytest.mark.parametrize("body", ["not json", "[]", '{"findings": [{"code": "SLP201"}]}'])
    def test_bad_file(self, tmp_path: Path, body: str) -> None:
        """A file that is not a baseline is a ConfigError."""
        base = tmp_path / "baseline.json"
        base.write_text(body)
        with pytest.raises(ConfigError):
            read_baseline(base)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing baseline is a ConfigError."""
        with pytest.raises(ConfigError, match="cannot read the baseline"):
            read_baseline(tmp_path / "nope.json")
