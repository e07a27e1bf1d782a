"""The scanner's engine: effects followed across modules, suppressions, the cache, workers,
bad files and bad arguments, and the scanner run on slipstream itself (the invariants as
properties are in test_properties, precision on real shapes in test_precision)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slipstream._impl.scan import engine as _engine
from slipstream._impl.scan import parse as _parse
from slipstream._impl.scan import scan, scan_report

from .helpers import codes, write

CHAIN = {
    "app/__init__.py": "",
    "app/db.py": """
        from sqlalchemy.orm import Session

        def commit_row(session: Session, row):
            session.add(row)
            session.commit()
    """,
    "app/repo.py": """
        from app.db import commit_row as save

        def store(session, row):
            save(session, row)
    """,
    "app/jobs.py": """
        from app import repo

        def run(session, rows):
            for row in rows:
                repo.store(session, row)
    """,
}


class TestChains:
    def test_three_modules_deep(self, tmp_path: Path) -> None:
        """A loop that calls a helper (through an alias) that commits is SLP203 at the loop's
        call site, with the chain to the commit."""
        findings = scan(write(tmp_path, CHAIN), jobs=1)
        assert [("SLP203", "app/jobs.py", 6)] == codes(findings)
        assert ["app/repo.py:5 store", "app/db.py:6 commit_row"] == [
            str(step) for step in findings[0].chain
        ]

    def test_src_layout(self, tmp_path: Path) -> None:
        """Module names come from packages, not from the scanned folder: src/app/... is
        app..., so `from app.db import ...` resolves whatever folder the scan starts from."""
        write(tmp_path, {f"src/{name}": body for name, body in CHAIN.items()})
        assert [("SLP203", "src/app/jobs.py", 6)] == codes(scan(tmp_path, jobs=1))
        assert [("SLP203", "app/jobs.py", 6)] == codes(scan(tmp_path / "src", jobs=1))

    def test_recursion_is_safe(self, tmp_path: Path) -> None:
        """Mutually recursive helpers reach a fixed point."""
        write(
            tmp_path,
            {
                "m.py": """
                import time

                def a(n):
                    if n:
                        b(n - 1)

                def b(n):
                    time.sleep(1)
                    a(n)

                async def handler():
                    a(3)
                """
            },
        )
        findings = scan(tmp_path, jobs=1)
        assert [("SLP401", "m.py", 13)] == codes(findings)
        assert ["m.py:6 a", "m.py:9 b"] == [str(s) for s in findings[0].chain]

    def test_user_knowledge(self, tmp_path: Path) -> None:
        """`knowledge=` adds an API to the table: a vendored client's `save_all` commits."""
        write(
            tmp_path,
            {
                "job.py": """
                from vendor.store import save_all

                def run(batches):
                    for batch in batches:
                        save_all(batch)
                """
            },
        )
        assert [] == scan(tmp_path, jobs=1)
        found = scan(tmp_path, jobs=1, knowledge={"commit": ["vendor.store.save_all"]})
        assert [("SLP203", "job.py", 6)] == codes(found)
        with pytest.raises(ValueError, match="'knowledge' has an unknown kind 'comit'"):
            scan(tmp_path, knowledge={"comit": ["x"]})


class TestSuppression:
    BODY = """
        import time

        def nap():
            time.sleep(1){effect}

        async def handler():
            nap(){call}
    """

    @pytest.mark.parametrize(
        ("effect", "call", "expected"),
        [
            ("", "", 1),
            ("", "  # noqa: SLP401", 0),
            ("", "  # noqa: blocking-in-async", 0),
            ("", "  # noqa", 0),
            ("", "  # noqa: SLP201", 1),
            ("  # noqa: SLP401 - a test helper", "", 0),
        ],
    )
    def test_noqa(self, tmp_path: Path, effect: str, call: str, expected: int) -> None:
        """On the reported line (code, name or bare), or on the effect's own line, where it
        stops the effect from propagating to every caller."""
        write(tmp_path, {"m.py": self.BODY.format(effect=effect, call=call)})
        assert expected == len(scan(tmp_path, jobs=1))


class TestFiltersAndArguments:
    def test_select_ignore_severity_exclude(self, tmp_path: Path) -> None:
        """select, ignore (by code, name or prefix), min_severity and exclude each narrow the
        findings."""
        write(tmp_path, CHAIN)
        write(
            tmp_path,
            {"gen/x.py": "import asyncio\n\nasync def f():\n    asyncio.create_task(f())\n"},
        )
        every = {f.code for f in scan(tmp_path, jobs=1)}
        assert {"SLP203", "SLP502"} == every
        assert {"SLP502"} == {f.code for f in scan(tmp_path, jobs=1, select=["dangling-task"])}
        assert {"SLP502"} == {f.code for f in scan(tmp_path, jobs=1, ignore=["SLP2"])}
        assert {"SLP203"} == {f.code for f in scan(tmp_path, jobs=1, min_severity="high")}
        assert {"SLP203"} == {f.code for f in scan(tmp_path, jobs=1, exclude=["gen"])}

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"select": ["SLP999"]}, ValueError, "'select' names an unknown rule 'SLP999'"),
            ({"ignore": ["nope"]}, ValueError, "'ignore' names an unknown rule 'nope'"),
            ({"min_severity": "urgent"}, ValueError, "'min_severity' must be one of"),
            ({"jobs": 0}, ValueError, "'jobs' must be a positive integer"),
            ({"jobs": True}, ValueError, "'jobs' must be a positive integer"),
            ({"knowledge": ["x"]}, TypeError, "'knowledge' must be a mapping"),
        ],
    )
    def test_bad_arguments(
        self, tmp_path: Path, kwargs: dict[str, object], error: type[Exception], match: str
    ) -> None:
        """Bad arguments raise ValueError or TypeError naming the parameter."""
        write(tmp_path, {"m.py": "x = 1\n"})
        with pytest.raises(error, match=match):
            scan_report(tmp_path, **kwargs)  # type: ignore[arg-type]

    def test_paths(self, tmp_path: Path) -> None:
        """No paths is a TypeError; a path that does not exist is FileNotFoundError."""
        with pytest.raises(TypeError, match="'paths' must be a path"):
            scan_report([])
        with pytest.raises(FileNotFoundError, match="no such file or directory"):
            scan_report(tmp_path / "missing")


class TestFiles:
    def test_never_runs_the_code(self, tmp_path: Path) -> None:
        """Scanning imports and executes nothing it scans."""
        marker = tmp_path / "ran"
        write(tmp_path, {"evil.py": f"open({str(marker)!r}, 'w').write('x')\nimport os\n"})
        scan(tmp_path, jobs=1)
        assert not marker.exists()

    def test_bad_files_are_reported_and_the_rest_scanned(self, tmp_path: Path) -> None:
        """Python 2, NUL bytes, undecodable bytes and an oversized file are file errors with their
        reason; the other files are still scanned."""
        write(tmp_path, CHAIN)
        (tmp_path / "py2.py").write_text("print 'hello'\n")
        (tmp_path / "nul.py").write_bytes(b"x = 1\x00\n")
        (tmp_path / "latin.py").write_bytes("s = 'caf\xe9'\n".encode("latin-1"))
        (tmp_path / "big.py").write_bytes(b"x = 1\n" * (_engine.MAX_BYTES // 6 + 1))
        report = scan_report(tmp_path, jobs=1)
        reasons = {e.path: e.reason for e in report.errors}
        assert {"py2.py", "nul.py", "latin.py", "big.py"} == set(reasons)
        assert "Python 2" in reasons["py2.py"]
        assert "NUL" in reasons["nul.py"]
        assert "decode" in reasons["latin.py"]
        assert "larger than" in reasons["big.py"]
        assert [("SLP203", "app/jobs.py", 6)] == codes(list(report.findings))

    def test_symlink_loop_does_not_hang(self, tmp_path: Path) -> None:
        """A symlink pointing back up the tree is not followed: the scan ends and counts each
        finding once."""
        write(tmp_path, CHAIN)
        (tmp_path / "app" / "loop").symlink_to(tmp_path, target_is_directory=True)
        assert 1 == len(scan(tmp_path, jobs=1))

    def test_default_excludes(self, tmp_path: Path) -> None:
        """Virtualenvs, node_modules, build output, site-packages and hidden folders are skipped by
        default."""
        for folder in (".venv", "venv", "node_modules", "build", ".hidden", "x/site-packages"):
            write(tmp_path, {f"{folder}/m.py": "import time\nasync def f():\n    time.sleep(1)\n"})
        assert 0 == scan_report(tmp_path, jobs=1).files

    def test_what_ast_parse_builds_the_walk_reads(self, tmp_path: Path) -> None:
        """A generated expression 1,500 terms deep (past Python's default recursion limit for the
        walk) is scanned, not reported as an error."""
        (tmp_path / "gen.py").write_text(
            "import time\n\nasync def f():\n    x = " + " + ".join(["g()"] * 1500) + "\n"
            "    time.sleep(1)\n"
        )
        report = scan_report(tmp_path, jobs=1)
        assert () == report.errors
        assert [("SLP401", "gen.py", 5)] == codes(list(report.findings))


class TestCacheAndWorkers:
    def test_cache_serves_unchanged_files(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A second scan reads nothing again; after one file changes only that file is
        analysed again; every answer equals a scan without the cache."""
        project = write(tmp_path / "p", CHAIN)
        cache = tmp_path / "cache"
        calls: list[str] = []
        real = _parse.extract

        def counting(*args: object, **kwargs: object) -> object:
            calls.append(str(args[2]))
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(_parse, "extract", counting)
        first = scan(project, jobs=1, cache_dir=cache)
        assert 4 == len(calls)
        calls.clear()
        assert first == scan(project, jobs=1, cache_dir=cache)
        assert [] == calls
        jobs = project / "app" / "jobs.py"
        jobs.write_text("\n\n" + jobs.read_text())
        moved = scan(project, jobs=1, cache_dir=cache)
        assert ["app/jobs.py"] == calls
        assert moved == scan(project, jobs=1)
        assert [8] == [f.line for f in moved]
        assert [f.fingerprint for f in first] == [f.fingerprint for f in moved]
        assert (cache / ".gitignore").read_text() == "*\n"

    def test_a_damaged_cache_is_rebuilt(self, tmp_path: Path) -> None:
        """A cache file that is not a pickle is ignored and rebuilt; the findings are the same."""
        project = write(tmp_path / "p", CHAIN)
        cache = tmp_path / "cache"
        first = scan(project, jobs=1, cache_dir=cache)
        for f in cache.glob("*.pickle"):
            f.write_bytes(b"not a pickle")
        assert first == scan(project, jobs=1, cache_dir=cache)

    def test_workers_agree(self, tmp_path: Path) -> None:
        """Worker processes (used from 40 files up) give the same findings as one process."""
        for i in range(45):
            write(tmp_path, {f"m{i}.py": f"import time\n\nasync def f{i}():\n    time.sleep(1)\n"})
        one = scan(tmp_path, jobs=1)
        assert 45 == len(one)
        assert one == scan(tmp_path, jobs=2)


def test_scan_is_exported() -> None:
    """`slipstream.scan` is the find package's `scan`."""
    import slipstream

    assert slipstream.scan is scan
    assert os.path.basename(slipstream._impl.scan.__file__) == "__init__.py"


REPO = Path(__file__).resolve().parents[2]


def test_dogfood() -> None:
    """The naive annotation loop shows its problems (a client per item, the schema
    compiled per item, a write and a commit per row); slipstream's own code, its benchmarks
    and the fast pipeline report nothing that is not suppressed with a reason."""
    naive = scan(REPO / "examples" / "annotation", jobs=1, root=REPO)
    assert {"SLP101", "SLP103", "SLP202", "SLP203"} <= {
        f.code for f in naive if f.path == "examples/annotation/naive.py"
    }
    clean = scan(
        [REPO / "src", REPO / "benchmarks", REPO / "examples" / "annotation" / "fast.py"],
        jobs=1,
        root=REPO,
    )
    assert [] == [str(f) for f in clean]
