"""The scanner's engine: effects followed across modules, suppressions, the cache, workers,
bad files and bad arguments, and its invariants as properties (hypothesis)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slipstream._impl.scan import engine as _engine
from slipstream._impl.scan import scan, scan_report
from slipstream._impl.scan.model import Finding


def write(root: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
    return root


def codes(findings: list[Finding]) -> list[tuple[str, str, int]]:
    return [(f.code, f.path, f.line) for f in findings]


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


class TestCacheAndWorkers:
    def test_cache_serves_unchanged_files(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A second scan reads nothing again; after one file changes only that file is
        analysed again; every answer equals a scan without the cache."""
        project = write(tmp_path / "p", CHAIN)
        cache = tmp_path / "cache"
        calls: list[str] = []
        real = _engine.extract

        def counting(*args: object, **kwargs: object) -> object:
            calls.append(str(args[2]))
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(_engine, "extract", counting)
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


# -- properties ---------------------------------------------------------------------------------

STATEMENTS = [
    "import time",
    "import asyncio",
    "from sqlalchemy.orm import Session",
    "CACHE = {}",
    "def helper(session: Session, x):\n    session.commit()",
    "def nap():\n    time.sleep(1)",
    "async def handler(items):\n    for x in items:\n        nap()",
    "async def spawn():\n    asyncio.create_task(spawn())",
    "def job(session: Session, rows):\n    for r in rows:\n        helper(session, r)",
    "def memo(k):\n    if k in CACHE:\n        return CACHE[k]\n    CACHE[k] = k",
    "class C:\n    def m(self):\n        return self.m()",
    "x = [y for y in range(3)]",
    "while False:\n    pass",
    "async def g():\n    await asyncio.sleep(0)",
]


@st.composite
def programs(draw: st.DrawFn) -> str:
    body = draw(st.lists(st.sampled_from(STATEMENTS), min_size=1, max_size=10))
    return "\n\n".join(body) + "\n"


PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class TestProperties:
    @PROPERTY
    @given(data=st.binary(max_size=300))
    def test_any_bytes_are_findings_or_an_error(self, tmp_path: Path, data: bytes) -> None:
        """Whatever a file holds, the scan returns (never raises): it is either scanned or
        reported as an error, not both, not neither."""
        path = tmp_path / "blob.py"
        path.write_bytes(data)
        report = scan_report(path, jobs=1)
        assert 1 == report.files + len(report.errors)

    @PROPERTY
    @given(source=programs(), blank=st.integers(min_value=1, max_value=5))
    def test_shifting_lines_keeps_fingerprints(
        self, tmp_path: Path, source: str, blank: int
    ) -> None:
        """Lines added above move every finding by as many lines and keep its fingerprint;
        findings are sorted and deterministic."""
        path = tmp_path / "m.py"
        path.write_text(source)
        before = scan(path, jobs=1)
        assert before == scan(path, jobs=1)
        assert before == sorted(before, key=lambda f: (f.path, f.line, f.col, f.code))
        path.write_text("#\n" * blank + source)
        after = scan(path, jobs=1)
        assert [(f.code, f.line + blank, f.fingerprint) for f in before] == [
            (f.code, f.line, f.fingerprint) for f in after
        ]

    @PROPERTY
    @given(source=programs())
    def test_noqa_on_every_reported_line_silences_all(self, tmp_path: Path, source: str) -> None:
        """Adding `# noqa: CODE` on each reported line leaves no finding."""
        path = tmp_path / "m.py"
        path.write_text(source)
        found = scan(path, jobs=1)
        lines = source.splitlines()
        for f in found:
            lines[f.line - 1] = lines[f.line - 1].split("  # noqa")[0] + f"  # noqa: {f.code}"
        path.write_text("\n".join(lines) + "\n")
        assert [] == scan(path, jobs=1)

    @PROPERTY
    @given(source=programs(), selected=st.sets(st.sampled_from(_engine.ALL_CODES), min_size=1))
    def test_select_is_a_filter(self, tmp_path: Path, source: str, selected: set[str]) -> None:
        """Selecting rules never finds anything the full scan does not."""
        path = tmp_path / "m.py"
        path.write_text(source)
        every = scan(path, jobs=1)
        assert [f for f in every if f.code in selected] == scan(path, jobs=1, select=selected)


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


def test_a_project_module_named_like_the_stdlib_hides_nothing(tmp_path: Path) -> None:
    """A package with its own `socket.py` or `json/` does not make the standard library's
    `socket` or `json` look like project code (a vendored redis hid every socket call)."""
    write(
        tmp_path,
        {
            "vendor/__init__.py": "",
            "vendor/_parsers/__init__.py": "",
            "vendor/_parsers/socket.py": "x = 1\n",
            "vendor/json/__init__.py": "",
            "app.py": (
                "import socket\n\nasync def resolve(host):\n    socket.getaddrinfo(host, 80)\n"
            ),
        },
    )
    assert [("SLP401", "app.py", 4)] == codes(scan(tmp_path, jobs=1))


class TestPrecisionOnRealShapes:
    """Shapes a hand review of real code found misread (distributed, redis, moto)."""

    def test_numeric_getaddrinfo_does_not_block(self, tmp_path: Path) -> None:
        """getaddrinfo with AI_NUMERICHOST (here through a module constant) does no DNS and is not
        reported; without it, it is."""
        write(
            tmp_path,
            {
                "m.py": """
                import socket

                _NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV

                async def fast(host, port):
                    return socket.getaddrinfo(host, port, flags=_NUMERIC)

                async def slow(host, port):
                    return socket.getaddrinfo(host, port)
                """
            },
        )
        assert [("SLP401", "m.py", 10)] == codes(scan(tmp_path, jobs=1))

    def test_a_branch_that_leaves_the_loop_runs_once(self, tmp_path: Path) -> None:
        """Work in a loop branch that returns runs once, not per item; the same work on the loop's
        path is reported."""
        write(
            tmp_path,
            {
                "m.py": """
                import json

                def find(items, raw):
                    for item in items:
                        if item.name == "x":
                            return json.loads(raw)
                        print(json.loads(raw))
                """
            },
        )
        assert [("SLP103", "m.py", 8)] == codes(scan(tmp_path, jobs=1))

    def test_a_union_of_a_sync_and_an_async_type_is_neither(self, tmp_path: Path) -> None:
        """`httpx.Client | httpx.AsyncClient` is not read as the sync client; `httpx.Client | None`
        is."""
        write(
            tmp_path,
            {
                "m.py": """
                import httpx

                async def get(client: httpx.Client | httpx.AsyncClient, url):
                    return await client.get(url)

                async def get_sync(client: httpx.Client | None, url):
                    return client.get(url)
                """
            },
        )
        assert [("SLP401", "m.py", 8)] == codes(scan(tmp_path, jobs=1))


def test_what_ast_parse_builds_the_walk_reads(tmp_path: Path) -> None:
    """A generated expression 1,500 terms deep (past Python's default recursion limit for the
    walk) is scanned, not reported as an error."""
    (tmp_path / "gen.py").write_text(
        "import time\n\nasync def f():\n    x = " + " + ".join(["g()"] * 1500) + "\n"
        "    time.sleep(1)\n"
    )
    report = scan_report(tmp_path, jobs=1)
    assert () == report.errors
    assert [("SLP401", "gen.py", 5)] == codes(list(report.findings))


def test_a_nonblocking_function_does_not_block(tmp_path: Path) -> None:
    """`@ss.nonblocking` runs the body in a worker thread: calling it from async code does not
    block the loop; the same function undecorated does."""
    write(
        tmp_path,
        {
            "m.py": """
            import time

            import slipstream as ss

            @ss.nonblocking
            def slow_read():
                time.sleep(1)

            def slow():
                time.sleep(1)

            async def handler():
                await slow_read()
                slow()
            """
        },
    )
    assert [("SLP401", "m.py", 15)] == codes(scan(tmp_path, jobs=1))


def test_user_invariant_knowledge_reaches_through_a_helper(tmp_path: Path) -> None:
    """An `invariant` entry in `knowledge=` is followed through a helper like a built-in one:
    the helper called in a loop with unchanging arguments is SLP103 at the call."""
    write(
        tmp_path,
        {
            "m.py": """
            from vendor.schemas import compile_schema

            def validator():
                return compile_schema("order.json")

            def check(orders):
                for order in orders:
                    validator().validate(order)
            """
        },
    )
    assert [] == scan(tmp_path, jobs=1)
    found = scan(tmp_path, jobs=1, knowledge={"invariant": ["vendor.schemas.compile_schema"]})
    assert [("SLP103", "m.py", 9)] == codes(found)
