"""The facts one file is reduced to: small picklable records of what each function calls, in
which loop, under which lock, and what each class and module-level name holds. The cache stores
them and the worker processes send them back; nothing in them refers to an AST node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["Call", "ClassFacts", "Func", "Local", "Loop", "ModuleFacts", "Target", "TypeRef"]

# A TypeRef is a nested tuple, resolved in phase 2:
#   ("known", K)  ("ret", dotted)  ("nameref", dotted)  ("annot", dotted)  ("inst", dotted)
#   ("attr", T, name)  ("sub", T)  ("call", T)  ("meth_ret", T, attrs)
TypeRef = tuple[Any, ...]
# A call target: ("name", dotted) or ("meth", T, attrs) with attrs the attribute path whose
# last element is the method name.
Target = tuple[Any, ...]


class Loop(NamedTuple):
    """A ``for`` / ``async for`` loop or a comprehension. ``skip``: a retry loop or one over a
    small literal (no loop rule applies). ``ok301``: its iterations look independent."""

    line: int
    kind: str  # "for", "async for", "comp"
    skip: bool
    ok301: bool


class Call(NamedTuple):
    """One call in a function (a named tuple: there are hundreds of thousands, and the cache
    pickles them)."""

    target: Target
    line: int
    col: int
    end_line: int
    end_col: int
    text: str  # the called expression, for messages ("session.commit")
    awaited: bool
    loop: int  # index of the innermost loop in Func.loops, -1 when not in a loop
    in_lock: bool
    sql: str | None = None  # "query" / "write" for execute(...) calls whose statement is known
    invariant_args: bool = True  # no argument depends on a name assigned in the loop
    const_args: bool = False  # every argument is a constant or a module-level name
    passes: tuple[Target, ...] = ()  # functions passed as arguments (not called here)


@dataclass
class Func:
    qualname: str
    name: str  # for chains: "save", "Repo.save"
    line: int
    is_async: bool
    cls: str | None
    memoised: bool
    handler: bool
    bounded: bool  # holds a lock or semaphore around its work (gather over it is bounded)
    returns: TypeRef | None
    calls: list[Call] = field(default_factory=list)
    loops: list[Loop] = field(default_factory=list)
    gathers: list[tuple[Call, Target | None, int]] = field(default_factory=list)  # SLP302
    builds_once: bool = False  # a client it builds is stored once (global / attribute guard)
    task: bool = False  # a job-queue / cluster task (Celery, Ray, Dask, dramatiq)
    offloaded: bool = False  # @ss.nonblocking and the like: its body runs in a worker thread


@dataclass
class ClassFacts:
    qualname: str
    bases: tuple[str, ...]
    attrs: dict[str, TypeRef]
    methods: frozenset[str]


@dataclass
class Local:
    """A finding that needs only its own file (SLP501/502/503): no chain."""

    code: str
    line: int
    col: int
    end_line: int
    end_col: int
    message: str


@dataclass
class ModuleFacts:
    module: str
    path: str
    lines: int
    imports: dict[str, str]
    functions: list[Func]
    classes: list[ClassFacts]
    variables: dict[str, TypeRef]
    local: list[Local]
    noqa: dict[int, frozenset[str] | None]  # line -> codes/names (None: every rule)
