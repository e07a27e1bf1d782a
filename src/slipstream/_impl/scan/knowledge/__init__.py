"""What the scanner knows about other people's APIs, as data: which calls build an expensive
client, which run a query, write, commit or block, and what type each call returns.

Everything is keyed by what an import resolves to (``sqlalchemy.orm.Session``), never by a bare
method name: ``x.get(...)`` is a query only when ``x`` is known to be, say, a Redis client.
Users extend the table in ``[tool.slipstream.scan.knowledge]`` (see :func:`extended`).

The table is split by the question it answers: ``types`` (what a call builds, what an
annotation names), ``methods`` (what a method of a known type does), ``calls`` (what a plain
function or decorator does, and SQL words); this module joins them with a user's additions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .calls import FUNCTIONS
from .types import CONSTRUCTORS

__all__ = ["USER_KINDS", "Knowledge", "extended"]


@dataclass(frozen=True)
class Knowledge:
    """The table the scan uses: the built-in entries plus a user's additions."""

    functions: Mapping[str, str] = field(default_factory=lambda: FUNCTIONS)
    constructors: Mapping[str, str] = field(default_factory=lambda: CONSTRUCTORS)


USER_KINDS = ("query", "write", "commit", "client", "blocking", "invariant", "io")


def extended(extra: Mapping[str, Sequence[str]] | None) -> Knowledge:
    """The built-in table plus ``extra``: ``{"query": ["pkg.mod.fn", ...], ...}`` (kinds:
    query, write, commit, client, blocking, invariant, io). A ``client`` entry marks a
    constructor; the others mark functions or methods (``pkg.mod.Class.method``)."""
    if not extra:
        return Knowledge()
    if not isinstance(extra, Mapping):
        raise TypeError(f"'knowledge' must be a mapping of kind -> names, got {extra!r}")
    functions = dict(FUNCTIONS)
    constructors = dict(CONSTRUCTORS)
    for kind, names in extra.items():
        if kind not in USER_KINDS:
            raise ValueError(
                f"'knowledge' has an unknown kind {kind!r}; known: {', '.join(USER_KINDS)}"
            )
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"'knowledge.{kind}' must be a list of dotted names, got {names!r}")
        for name in names:
            if kind == "client":
                constructors[name] = f"user:{name}"
            else:
                functions[name] = kind
    return Knowledge(functions=functions, constructors=constructors)
