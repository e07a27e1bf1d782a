"""slipstream's pytest plugin: fail a test that runs an N+1, or sends more statements than asked.

Registered by entry point (``pytest11``), so it loads whenever slipstream is installed, and does
nothing until asked. It is a top-level module of its own, not ``slipstream.pytest_plugin``:
importing anything inside ``slipstream`` runs the package's ``__init__`` (about 0.3 s), which
every pytest run of every project with slipstream installed would pay; this module imports
slipstream only when a test asks for it.

- ``pytest --slipstream-detect`` (or ``slipstream_detect = true`` in the ini file): each test's
  call phase runs inside an ``ss.watch()`` scope with test gates; a test that sends the same
  statement from one call site ``--slipstream-min-repeats`` times (default 2: SLP201
  query-in-loop, SLP202 write-in-loop, SLP203 commit-in-loop) fails, with each finding's call
  site, count, fingerprint and fix. ``--slipstream-record FILE`` also merges the findings into
  the runtime findings file that ``slipstream scan --runtime FILE`` joins.
- ``@pytest.mark.max_queries(n)``: the test's call phase may send at most ``n`` statements
  (works without ``--slipstream-detect``).
- the ``query_budget`` fixture: ``with query_budget(3) as budget: ...`` fails the test when the
  block sends more than 3; ``budget.report`` is the block's ``WatchReport``.
- ``@pytest.mark.slipstream_allow("SLP201")``: let those codes (none given: every code) pass.

SQLAlchemy engines are hooked for you (every ``Engine`` and ``AsyncEngine``, while the plugin
is in use); hook a ``sqlite3`` / ``asyncpg`` connection or an httpx client in your fixture with
``ss.instrument(conn)``. Setup and teardown (fixtures creating data) are not counted.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from slipstream._impl.detect.pytest_plugin import QueryBudget

__all__ = ["query_budget"]


def _impl() -> Any:
    from slipstream._impl.detect import pytest_plugin

    return pytest_plugin


_DETECT = pytest.StashKey[tuple[bool, int, "str | None"]]()
_HOOKED = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's options (all off by default)."""
    group = parser.getgroup("slipstream", "slipstream: find N+1 queries in tests")
    group.addoption(
        "--slipstream-detect",
        action="store_true",
        default=None,
        help="fail tests whose call phase runs an N+1 query, per-item write or commit",
    )
    group.addoption(
        "--slipstream-min-repeats",
        type=int,
        default=None,
        metavar="N",
        help="repeats of one statement from one call site that fail a test (default 2)",
    )
    group.addoption(
        "--slipstream-record",
        default=None,
        metavar="FILE",
        help="merge the findings into this runtime findings file (slipstream scan --runtime)",
    )
    parser.addini("slipstream_detect", "same as --slipstream-detect", type="bool", default=False)
    parser.addini("slipstream_min_repeats", "same as --slipstream-min-repeats", default="2")


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers; with detection on, hook every SQLAlchemy engine."""
    config.addinivalue_line(
        "markers", "max_queries(n): fail the test when its call phase sends more than n statements"
    )
    config.addinivalue_line(
        "markers",
        "slipstream_allow(*codes): let these slipstream findings (SLP201...; none: all) pass",
    )
    detect = config.getoption("slipstream_detect")
    if detect is None:
        detect = bool(config.getini("slipstream_detect"))
    repeats: Any = config.getoption("slipstream_min_repeats")
    if repeats is None:
        repeats = config.getini("slipstream_min_repeats")
    try:
        min_repeats = int(repeats)
    except ValueError:
        raise pytest.UsageError(
            f"slipstream_min_repeats must be an integer, got {repeats!r}"
        ) from None
    if min_repeats < 2:
        raise pytest.UsageError(f"--slipstream-min-repeats must be >= 2, got {min_repeats}")
    config.stash[_DETECT] = (detect, min_repeats, config.getoption("slipstream_record"))
    if detect:
        _hook_sqlalchemy(config)


def _hook_sqlalchemy(config: pytest.Config) -> None:
    if not config.stash.get(_HOOKED, False):
        config.stash[_HOOKED] = _impl().install_sqlalchemy()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the SQLAlchemy hooks this run installed."""
    if config.stash.get(_HOOKED, False):
        _impl().uninstall_sqlalchemy()
        config.stash[_HOOKED] = False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """Run the call phase in a watch scope when detection is on or the test has a budget."""
    detect, min_repeats, record_to = item.config.stash.get(_DETECT, (False, 2, None))
    if not detect and item.get_closest_marker("max_queries") is None:
        return (yield)
    _hook_sqlalchemy(item.config)
    return (
        yield from _impl().watch_call(
            item, detect=detect, min_repeats=min_repeats, record_to=record_to
        )
    )


@pytest.fixture
def query_budget(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``with query_budget(3) as budget:`` (or ``async with``): fail the test when the block
    sends more than 3 statements through hooked drivers; ``budget.report`` is its report.
    ``query_budget(3, info="listing page")`` puts ``info`` first in the failure text."""
    _hook_sqlalchemy(request.config)
    rootdir = str(request.config.rootpath)

    def make(limit: int, *, info: str | None = None) -> QueryBudget:
        budget: QueryBudget = _impl().QueryBudget(limit, info=info, rootdir=rootdir)
        return budget

    return make
