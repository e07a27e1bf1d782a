"""The scanner's invariants as properties (hypothesis): any bytes give findings or an error,
fingerprints survive moved lines, `# noqa` silences, `select` only filters."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slipstream._impl.scan import engine as _engine
from slipstream._impl.scan import scan, scan_report

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
