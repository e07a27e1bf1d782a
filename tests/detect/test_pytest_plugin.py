"""The pytest plugin, run on real test files by pytester: --slipstream-detect, max_queries,
query_budget, on sqlite3 files, SQLAlchemy (sync, ORM, async on PostgreSQL) and anyio /
pytest-asyncio tests whose runner exists before the test starts."""

from __future__ import annotations

# imported here so pytester's inline runs find them in sys.modules (it drops modules a run
# imports), and the watchers see one SQLAlchemy. A C extension dropped that way and imported
# again by a later test crashes the interpreter: asyncpg's and ssl's, after the AsyncEngine
# test, made the next asyncpg connect segfault (tests/db after this file).
import ssl  # noqa: F401
import textwrap

import asyncpg  # noqa: F401
import pytest
import pytest_asyncio  # noqa: F401
import sqlalchemy
import sqlalchemy.dialects.postgresql.asyncpg
import sqlalchemy.ext.asyncio
import sqlalchemy.orm  # noqa: F401
from sqlalchemy import event
from sqlalchemy.engine import Engine

from slipstream._impl.core.rules import rule
from slipstream._impl.detect import sawatch

pytest_plugins = ["pytester"]

# every inner run: pytest-asyncio (installed for its own test below) stays out unless asked;
# hypothesis's plugin costs 1.3 s a run and is not needed
NO_ASYNCIO = ("-p", "no:asyncio", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")

DB = '''
import sqlite3

import pytest

import slipstream as ss


@pytest.fixture
def db():
    """Ten users, inserted and committed one by one: setup, not counted."""
    conn = sqlite3.connect(":memory:")
    ss.instrument(conn)
    conn.execute("create table users (id integer primary key, name text)")
    for i in range(10):
        conn.execute("insert into users values (?, ?)", (i, f"u{i}"))
        conn.commit()
    yield conn
    conn.close()


def load_user(conn, user_id):
    return conn.execute("select name from users where id = ?", (user_id,)).fetchone()  # query
'''

N_PLUS_ONE = """
def test_names(db):
    assert [load_user(db, i) for i in range(10)][0] == ("u0",)
"""

IN_QUERY = """
def test_names(db):
    marks = ", ".join("?" * 10)
    rows = db.execute(f"select name from users where id in ({marks})", list(range(10)))
    assert len(rows.fetchall()) == 10
"""


def line_of(source: str, marker: str) -> int:
    """The line of ``source`` (as makepyfile writes it, dedented) ending with ``# marker``."""
    lines = textwrap.dedent(source).strip().splitlines()
    (line,) = [i for i, text in enumerate(lines, 1) if text.endswith(f"# {marker}")]
    return line


class TestDetect:
    def test_an_n_plus_one_fails_with_its_call_site_count_and_fix(
        self, pytester: pytest.Pytester
    ) -> None:
        """A test that loads ten users one by one fails, naming the line in load_user, the
        count, the fingerprint and SLP201's fix; the setup's ten inserts and commits do not
        count."""
        pytester.makepyfile(test_orders=DB + N_PLUS_ONE)
        result = pytester.runpytest("--slipstream-detect", *NO_ASYNCIO)
        result.assert_outcomes(failed=1)
        line = line_of(DB + N_PLUS_ONE, "query")
        result.stdout.fnmatch_lines(
            [
                "*slipstream: 1 finding in the test's call phase (min_repeats=2; 10 statements*",
                f"  test_orders.py:{line} in load_user: SLP201 query-in-loop: "
                "10 x 'select name from users where id = ?' (0.0 ms)",
                f"      fix: {rule('SLP201').fix}",
                "*@pytest.mark.slipstream_allow('SLP201')*",
            ]
        )
        assert "SLP202" not in result.stdout.str()  # the fixture's inserts: setup

    def test_the_in_query_version_passes(self, pytester: pytest.Pytester) -> None:
        """The same test with one IN query passes under --slipstream-detect."""
        pytester.makepyfile(test_orders=DB + IN_QUERY)
        pytester.runpytest("--slipstream-detect", *NO_ASYNCIO).assert_outcomes(passed=1)

    def test_a_commit_per_item_fails_as_slp203(self, pytester: pytest.Pytester) -> None:
        """An insert and a commit per item fail with SLP202 and SLP203 at their lines."""
        body = """
def test_save(db):
    for i in range(20, 25):
        db.execute("insert into users values (?, 'x')", (i,))  # write
        db.commit()  # commit
"""
        pytester.makepyfile(test_save=DB + body)
        result = pytester.runpytest("--slipstream-detect", *NO_ASYNCIO)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                f"  test_save.py:{line_of(DB + body, 'write')} in test_save: SLP202 write-in-loop:"
                " 5 x 'insert into users values (?, ?)'*",
                f"  test_save.py:{line_of(DB + body, 'commit')} in test_save: SLP203 "
                "commit-in-loop: 5 x 'commit'*",
                f"      fix: {rule('SLP203').fix}",
            ]
        )

    def test_without_the_flag_the_n_plus_one_passes(self, pytester: pytest.Pytester) -> None:
        """The plugin is off unless asked: the N+1 test passes."""
        pytester.makepyfile(test_orders=DB + N_PLUS_ONE)
        pytester.runpytest(*NO_ASYNCIO).assert_outcomes(passed=1)

    def test_the_ini_option_turns_it_on_and_min_repeats_raises_the_gate(
        self, pytester: pytest.Pytester
    ) -> None:
        """``slipstream_detect = true`` fails the N+1 test; ``--slipstream-min-repeats 11``
        lets its 10 repeats pass."""
        pytester.makeini("[pytest]\nslipstream_detect = true\n")
        pytester.makepyfile(test_orders=DB + N_PLUS_ONE)
        pytester.runpytest(*NO_ASYNCIO).assert_outcomes(failed=1)
        pytester.runpytest("--slipstream-min-repeats", "11", *NO_ASYNCIO).assert_outcomes(passed=1)

    def test_slipstream_allow_lets_a_known_finding_pass(self, pytester: pytest.Pytester) -> None:
        """``@pytest.mark.slipstream_allow("SLP201")`` passes the N+1 test under
        --strict-markers; allowing another code does not."""
        body = """
@pytest.mark.slipstream_allow("SLP201")
def test_allowed(db):
    [load_user(db, i) for i in range(10)]


@pytest.mark.slipstream_allow("SLP203")
def test_other_code(db):
    [load_user(db, i) for i in range(10)]
"""
        pytester.makepyfile(test_orders=DB + body)
        result = pytester.runpytest("--slipstream-detect", "--strict-markers", *NO_ASYNCIO)
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["FAILED test_orders.py::test_other_code*"])


class TestBudgets:
    BODY = """
@pytest.mark.max_queries(10)
def test_within(db):
    [load_user(db, i) for i in range(10)]


@pytest.mark.max_queries(3)
def test_over(db):
    db.execute("select 1")
    [load_user(db, i) for i in range(5)]
"""

    def test_max_queries_passes_within_and_fails_over_without_the_flag(
        self, pytester: pytest.Pytester
    ) -> None:
        """The marker works on its own: 10 statements under max_queries(10) pass, 6 under
        max_queries(3) fail with the count, the budget and the most sent fingerprints."""
        pytester.makepyfile(test_budget=DB + self.BODY)
        result = pytester.runpytest("--strict-markers", *NO_ASYNCIO)
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*slipstream: 6 statements sent, over the budget of 3 "
                "(@pytest.mark.max_queries(3)). Most sent:",
                "      5 x 'select name from users where id = ?'",
                "      1 x 'select ?'",
            ]
        )

    def test_query_budget_fails_the_block_over_and_exposes_the_report(
        self, pytester: pytest.Pytester
    ) -> None:
        """``with query_budget(2)`` around 2 statements passes and its report counts 2;
        around 3 it fails naming the budget and ``info``."""
        body = """
def test_within(db, query_budget):
    with query_budget(2) as budget:
        load_user(db, 1)
        load_user(db, 2)
    assert budget.report.queries == 2
    assert budget.report.by_fingerprint == {"select name from users where id = ?": 2}


def test_over(db, query_budget):
    with query_budget(2, info="the users page"):
        for i in range(3):
            load_user(db, i)
"""
        pytester.makepyfile(test_fixture=DB + body)
        result = pytester.runpytest(*NO_ASYNCIO)
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "the users page",
                "slipstream: 3 statements sent, over the budget of 2 (query_budget(2)). Most sent:",
            ]
        )


class TestSqlAlchemy:
    BODY = '''
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import slipstream as ss


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


@pytest.fixture(params=["plain", "instrumented"])
def engine(request, tmp_path):
    """An engine nobody hooked (the plugin's class-level hooks see it), or one hooked too."""
    engine = sa.create_engine(f"sqlite:///{tmp_path}/app.db")
    if request.param == "instrumented":
        ss.instrument(engine)
    Base.metadata.create_all(engine)
    return engine


def test_lookups(engine, query_budget):
    with engine.connect() as conn, query_budget(3) as budget:
        for i in range(3):
            conn.execute(sa.select(User).where(User.id == i))  # lookup
    assert budget.report.queries == 3


def test_commit_per_user(engine):
    with Session(engine) as session:
        for i in range(4):
            session.add(User(id=i, name=f"u{i}"))
            session.commit()  # orm commit
'''

    def test_every_engine_is_hooked_each_statement_and_commit_counted_once(
        self, pytester: pytest.Pytester
    ) -> None:
        """An engine nobody instrumented is hooked by the plugin; one instrumented too counts
        each statement once (3 lookups: the budget of 3 passes) and each ORM commit once
        (4 commits, not 8); the hooks are gone after the run."""
        pytester.makepyfile(test_sa=self.BODY)
        # -rN: the short summary repeats each message, cut at the terminal's width except
        # where CI is set (then whole); count the failures section alone.
        result = pytester.runpytest("--slipstream-detect", "-rN", *NO_ASYNCIO)
        result.assert_outcomes(failed=4)
        out = result.stdout.str()
        lookup, commit = line_of(self.BODY, "lookup"), line_of(self.BODY, "orm commit")
        assert out.count(f"test_sa.py:{lookup} in test_lookups: SLP201 query-in-loop: 3 x") == 2
        assert out.count(f"test_sa.py:{commit} in test_commit_per_user: SLP203 ") == 2
        assert out.count("SLP203 commit-in-loop: 4 x 'commit'") == 2
        assert "over the budget" not in out
        assert not event.contains(Engine, "do_execute", sawatch._do_execute)


class TestAsync:
    BODY = """
import sqlite3

import pytest

import slipstream as ss


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
async def runner_started(anyio_backend):
    # a module-scoped async fixture: anyio's runner task exists before any test's scope
    yield


@pytest.fixture
def db():
    conn = sqlite3.connect(":memory:")
    ss.instrument(conn)
    conn.execute("create table users (id integer primary key, name text)")
    conn.executemany("insert into users values (?, 'x')", [(i,) for i in range(5)])
    return conn


@pytest.mark.anyio
async def test_names(runner_started, db):
    for i in range(5):
        db.execute("select name from users where id = ?", (i,))  # async n+1
"""

    def test_anyio_test_on_an_earlier_runner_fails(self, pytester: pytest.Pytester) -> None:
        """An anyio test whose runner task was started by a module-scoped async fixture (so it
        never sees a context variable set around the call) still fails with its N+1."""
        pytester.makepyfile(test_async=self.BODY)
        result = pytester.runpytest("--slipstream-detect", *NO_ASYNCIO)
        result.assert_outcomes(failed=1, passed=0)
        line = line_of(self.BODY, "async n+1")
        result.stdout.fnmatch_lines([f"  test_async.py:{line} in test_names: SLP201 *5 x*"])

    def test_pytest_asyncio_session_loop_fails(self, pytester: pytest.Pytester) -> None:
        """Under pytest-asyncio with a session-scoped loop and fixture, the N+1 fails too."""
        pytest.importorskip("pytest_asyncio")
        body = self.BODY.replace("@pytest.mark.anyio", '@pytest.mark.asyncio(loop_scope="session")')
        body = body.replace(
            '@pytest.fixture(scope="module")\nasync def runner_started(anyio_backend):',
            '@pytest_asyncio.fixture(scope="session", loop_scope="session")\n'
            "async def runner_started():",
        )
        pytester.makepyfile(test_async="import pytest_asyncio\n" + body)
        result = pytester.runpytest(
            "--slipstream-detect",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:anyio",
            "-p",
            "no:hypothesispytest",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
        )
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*in test_names: SLP201 *5 x*"])

    def test_sqlalchemy_async_engine_on_postgresql(
        self, pytester: pytest.Pytester, postgres_url: str
    ) -> None:
        """An anyio test reading one row per id through an ``AsyncEngine`` on asyncpg (hooked
        by the plugin, not by the test) fails at the line of the ``await``."""
        url = postgres_url.replace("postgresql://", "postgresql+asyncpg://")
        body = f"""
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_lookups():
    engine = create_async_engine("{url}")
    try:
        async with engine.connect() as conn:
            for i in range(4):
                await conn.execute(sa.text("select cast(:i as text)"), {{"i": str(i)}})  # pg n+1
    finally:
        await engine.dispose()
"""
        pytester.makepyfile(test_pg=body)
        result = pytester.runpytest("--slipstream-detect", *NO_ASYNCIO)
        result.assert_outcomes(failed=1)
        line = line_of(body, "pg n+1")
        result.stdout.fnmatch_lines([f"  test_pg.py:{line} in test_lookups: SLP201 *4 x*"])


class TestLoading:
    def test_loading_the_plugin_does_not_import_slipstream(self) -> None:
        """The entry point's module imports nothing of slipstream (whose ``__init__`` costs
        about 0.3 s): a pytest run that never asks for detection does not pay for it."""
        import subprocess
        import sys

        code = "import sys, slipstream_pytest; print('slipstream' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert (out.returncode, out.stdout.strip()) == (0, "False"), out.stderr

    def test_the_entry_point_names_that_module(self) -> None:
        """pytest finds the plugin through the ``pytest11`` entry point of the installed
        distribution, under the name ``slipstream`` (so ``-p no:slipstream`` turns it off)."""
        from importlib.metadata import entry_points

        (found,) = [e for e in entry_points(group="pytest11") if e.name == "slipstream"]
        assert found.value == "slipstream_pytest"
