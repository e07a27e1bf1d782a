"""Phase 1 of a scan, one file at a time: parse it once and reduce it to *facts*, small picklable
records of what each function calls, in which context (a loop, ``await``, a lock, ``async def``)
and on what receiver type, plus the findings that need nothing beyond the file (unbounded
caches, dangling tasks, lazy-init races). Facts are what the cache stores and what the worker
processes send back; phase 2 (``_effects``) joins them across the project.

Names are resolved as far as the file allows: ``from app.db import save as s; s(x)`` is a call
of ``app.db.save``; ``self.session.execute`` is a method ``execute`` on the type of attribute
``session`` of this class. Types stay symbolic (``TypeRef``) until phase 2 can see every file.
"""

from __future__ import annotations

import ast
import builtins
import re
import sys
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from .knowledge import (
    ANNOTATIONS,
    CONSTRUCTORS,
    FUNCTIONS,
    HANDLER_DECORATOR_ATTRS,
    HANDLER_DECORATORS,
    MEMOISERS,
    OFFLOAD_DECORATORS,
    OFFLOADERS,
    PER_ITEM_METHODS,
    PER_ITEM_RUNNERS,
    SA_WRITE_CONSTRUCTS,
    SQL_DDL_WORDS,
    SQL_READ_WORDS,
    SQL_WRITE_WORDS,
)

__all__ = ["Call", "ClassFacts", "Func", "Local", "Loop", "ModuleFacts", "extract"]

# A TypeRef is a nested tuple, resolved in phase 2:
#   ("known", K)  ("ret", dotted)  ("nameref", dotted)  ("annot", dotted)  ("inst", dotted)
#   ("attr", T, name)  ("sub", T)  ("call", T)  ("meth_ret", T, attrs)
TypeRef = tuple[Any, ...]
# A call target: ("name", dotted) or ("meth", T, attrs) with attrs the attribute path whose
# last element is the method name.
Target = tuple[Any, ...]

_RETRY_NAME = re.compile(r"attempt|retr|tries|^try", re.I)
_LOCK_NAME = re.compile(r"lock|sem(aphore)?\b|_sem|limit|mutex|throttle", re.I)
# an instance dict named as a cache (`self._cache`, `self.query_counts`), not a store of
# record that merely mentions one (`self.cache_subnet_groups`)
_CACHE_ATTR = re.compile(r"(cache|cached|memo|seen|counts?)$", re.I)
_SMALL = 10
_BUILTINS = frozenset(dir(builtins))
_STDLIB = frozenset(sys.stdlib_module_names) - {"asyncio"}
_NO = object()
# a parameter that is a function or class being registered (`registry[name] = handler`)
_CALLABLE_NAME = re.compile(
    r"(^|_)(fn|func|function|callback|cb|handler|hook|printer|factory|cls|klass|plugin|"
    r"decorated|wrapped|view|serializer|codec|backend)$",
    re.I,
)
_RUNNER_NAMES = frozenset({"map", "Stage", "stream"})
_AWAIT_THROUGH = frozenset({"asyncio.wait_for", "asyncio.shield", "asyncio.timeout"})


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


# -- helpers -----------------------------------------------------------------------------------


def _dotted(node: ast.expr) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        parts.reverse()
        return parts
    return None


def _sql_word(text: str) -> str | None:
    m = re.match(r"\s*\(?\s*([A-Za-z]+)", text)
    if not m:
        return None
    word = m.group(1).lower()
    if word in SQL_WRITE_WORDS:
        return "write"
    if word in SQL_READ_WORDS:
        return "query"
    if word in SQL_DDL_WORDS:
        return "ddl"
    return None


_NOQA = re.compile(r"#\s*noqa(?::\s*([A-Za-z0-9_\-, ]+))?", re.I)


def noqa_lines(text: str) -> dict[int, frozenset[str] | None]:
    found: dict[int, frozenset[str] | None] = {}
    if "noqa" not in text and "NOQA" not in text:
        return found
    for number, line in enumerate(text.splitlines(), 1):
        if "noqa" not in line.lower():
            continue
        m = _NOQA.search(line)
        if m is None:
            continue
        if m.group(1) is None:
            found[number] = None
        else:
            codes = {c.strip() for c in m.group(1).replace(" ", ",").split(",") if c.strip()}
            found[number] = frozenset(c.upper() if c[:3].upper() == "SLP" else c for c in codes)
    return found


# -- the module walker ---------------------------------------------------------------------------


class _Module:
    def __init__(
        self, module: str, path: str, is_package: bool, knowledge_functions: dict[str, str]
    ):
        self.module = module
        self.path = path
        self.package = module if is_package else module.rpartition(".")[0]
        self.imports: dict[str, str] = {}
        self.defs: set[str] = set()
        self.functions: list[Func] = []
        self.classes: list[ClassFacts] = []
        self.variables: dict[str, TypeRef] = {}
        self.assigned: set[str] = set()  # every name assigned at module level
        self.numeric: set[str] = set()  # module constants holding socket.AI_NUMERICHOST
        self.strings: dict[str, str] = {}  # module-level string constants (SQL kept aside)
        self.local: list[Local] = []
        self.kfunctions = knowledge_functions
        # dict-as-cache bookkeeping: key -> {function: events}; evicted keys
        self.usage: dict[tuple[str, ...], dict[str, set[str]]] = {}
        self.evicted: set[tuple[str, ...]] = set()
        self.cache_candidates: list[tuple[tuple[str, ...], ast.AST, str]] = []

    # imports and names ---------------------------------------------------------------------

    def add_import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    self.imports[a.asname] = a.name
                else:
                    top = a.name.partition(".")[0]
                    self.imports[top] = top
            return
        base = node.module or ""
        if node.level:
            pkg = self.package.split(".") if self.package else []
            if node.level > 1:
                pkg = pkg[: len(pkg) - (node.level - 1)]
            base = ".".join([*pkg, *([base] if base else [])])
        for a in node.names:
            if a.name == "*":
                continue
            self.imports[a.asname or a.name] = f"{base}.{a.name}" if base else a.name

    def global_name(self, name: str) -> str:
        if name in self.imports:
            return self.imports[name]
        if name in self.defs or name in self.variables:
            return f"{self.module}.{name}"
        if name in _BUILTINS and name not in self.assigned:
            return f"builtins.{name}"
        return f"{self.module}.{name}"

    def annotation(self, node: ast.expr | None) -> TypeRef | None:
        if node is None:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                node = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            # `X | None` is X; `SyncConn | AsyncConn` is neither (the methods differ: an async
            # class that overrides a blocking one must not be read as the sync one)
            sides = [n for n in (node.left, node.right) if not _is_none(n)]
            return self.annotation(sides[0]) if len(sides) == 1 else None
        if isinstance(node, ast.Subscript):
            outer = _dotted(node.value)
            name = outer[-1] if outer else ""
            inner = node.slice
            if name == "Union":
                members = inner.elts if isinstance(inner, ast.Tuple) else [inner]
                real = [m for m in members if not _is_none(m)]
                return self.annotation(real[0]) if len(real) == 1 else None
            if name in ("Optional", "Annotated", "Final", "ClassVar"):
                first = inner.elts[0] if isinstance(inner, ast.Tuple) and inner.elts else inner
                return self.annotation(first)
            if name in ("AsyncIterator", "Iterator", "AsyncGenerator", "Generator", "Awaitable"):
                first = inner.elts[0] if isinstance(inner, ast.Tuple) and inner.elts else inner
                return self.annotation(first)
            return None
        parts = _dotted(node)
        if not parts:
            return None
        head = self.imports.get(parts[0])
        dotted = ".".join([head, *parts[1:]]) if head else f"{self.module}.{'.'.join(parts)}"
        return ("annot", dotted)  # phase 2 resolves it (the project's own, or a known API)


class _FuncWalker:
    """Walks one function body, recording calls, loops and local findings."""

    def __init__(
        self,
        mod: _Module,
        func: Func,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        env: dict[str, TypeRef],
        nested: dict[str, str],
    ):
        self.mod = mod
        self.f = func
        self.node = node
        self.env = env
        self.nested = nested  # name -> qualname of functions defined inside
        self.loop_stack: list[tuple[int, set[str]]] = []  # (loop index, names assigned in it)
        self.lock = 0
        self._targets: dict[int, object] = {}
        self.guards: list[tuple[Any, ...]] = []  # absent-state checks the walk is inside
        self.inner: list[ast.FunctionDef | ast.AsyncFunctionDef] = []  # functions defined in it
        self.io_names: set[str] = set()  # locals assigned from an await or a blocking call
        self.strings: dict[str, str] = {}
        self.locals: set[str] = set(env)
        self.params: set[str] = (
            {k for k, v in env.items() if v[0] != "nameref"}
            | {a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]}
            if hasattr(node, "args")
            else set(env)
        )
        self.loads: dict[str, int] = {}
        self.spawned: list[tuple[str, ast.Call]] = []
        self.globals: set[str] = set()
        self.lists_from_comp: dict[str, tuple[ast.expr, ast.comprehension]] = {}
        self.appended: dict[str, ast.expr] = {}

    # targets and types --------------------------------------------------------------------

    def target_of(self, func: ast.expr) -> Target | None:
        """What a call of ``func`` calls (memoised per node: a statement asks up to three
        times, for its calls, its value's type and a spawned task)."""
        key = id(func)
        hit = self._targets.get(key, _NO)
        if hit is _NO:
            hit = self._targets[key] = self._target_of(func)
        return hit  # type: ignore[return-value]

    def _target_of(self, func: ast.expr) -> Target | None:
        if isinstance(func, ast.Name):
            n = func.id
            if n in self.env:
                return ("call", self.env[n])
            if n in self.nested:
                return ("name", self.nested[n])
            return ("name", self.mod.global_name(n))
        if isinstance(func, ast.Attribute):
            attrs: list[str] = []
            node: ast.expr = func
            while isinstance(node, ast.Attribute):
                attrs.append(node.attr)
                node = node.value
            attrs.reverse()
            if isinstance(node, ast.Name):
                n = node.id
                if n in self.env:
                    return ("meth", self.env[n], tuple(attrs))
                if n in self.mod.variables and n not in self.mod.imports:
                    return ("meth", ("var", f"{self.mod.module}.{n}"), tuple(attrs))
                base = self.mod.global_name(n) if n not in self.nested else self.nested[n]
                return ("name", ".".join([base, *attrs]))
            t = self.type_of(node)
            if t is not None:
                return ("meth", t, tuple(attrs))
        return None

    def type_of(self, node: ast.expr) -> TypeRef | None:
        if isinstance(node, ast.Name):
            n = node.id
            if n in self.env:
                return self.env[n]
            if n in self.mod.variables and n not in self.mod.imports:
                return ("var", f"{self.mod.module}.{n}")
            return ("nameref", self.mod.global_name(n))
        if isinstance(node, ast.Call):
            t = self.target_of(node.func)
            if t is None:
                return None
            if t[0] == "name":
                return ("ret", t[1])  # phase 2 knows whether t[1] is the project's own
            if t[0] == "meth":
                return ("meth_ret", t[1], t[2])
            return ("call", t[1])
        if isinstance(node, ast.Await):
            return self.type_of(node.value)
        if isinstance(node, ast.Attribute):
            inner = self.type_of(node.value)
            return ("attr", inner, node.attr) if inner is not None else None
        if isinstance(node, ast.Subscript):
            inner = self.type_of(node.value)
            return ("sub", inner) if inner is not None else None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return self.type_of(node.left)  # Path / "name" is a Path
        return None

    # statements --------------------------------------------------------------------------

    def run(self) -> None:
        for stmt in self.node.body:
            self.stmt(stmt)
        # a task assigned to a local that is never read again is dangling too
        for name, call in self.spawned:
            if self.loads.get(name, 0) == 0:
                self.dangling(call)

    def body(self, stmts: list[ast.stmt]) -> None:
        for s in stmts:
            self.stmt(s)

    def assign_names(self, target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.locals.add(target.id)
            for _, names in self.loop_stack:
                names.add(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for e in target.elts:
                self.assign_names(e)
        elif isinstance(target, ast.Starred):
            self.assign_names(target.value)
        else:
            self.expr(target)

    def stmt(self, s: ast.stmt) -> None:
        t = type(s)
        if t is ast.Expr:
            v = s.value  # type: ignore[attr-defined]
            if isinstance(v, ast.Call) and self.is_spawn(v):
                self.dangling(v)
            self.expr(v)
        elif t is ast.Assign:
            s = cast(ast.Assign, s)
            self.expr(s.value)
            vt = self.type_of(s.value)
            for target in s.targets:
                self.store(target, s.value, vt)
        elif t is ast.AnnAssign:
            s = cast(ast.AnnAssign, s)
            if s.value is not None:
                self.expr(s.value)
            at = self.mod.annotation(s.annotation)
            vt = at or (self.type_of(s.value) if s.value is not None else None)
            self.store(s.target, s.value, vt)
        elif t is ast.AugAssign:
            s = cast(ast.AugAssign, s)
            self.expr(s.value)
            if isinstance(s.target, ast.Name):
                self.locals.add(s.target.id)
            elif isinstance(s.target, ast.Subscript):
                self.expr(s.target.value)
                self.expr(s.target.slice)
                key = self.dict_key(s.target.value)
                if key is not None and _data_key(s.target.slice):
                    self.usage(key, "read")
                    self.usage(key, "write")
            else:
                self.expr(s.target)
        elif t is ast.Return:
            v = s.value  # type: ignore[attr-defined]
            if v is not None:
                self.expr(v)
                rt = self.type_of(v)
                if rt is not None and self.f.returns is None:
                    self.f.returns = rt
        elif t in (ast.For, ast.AsyncFor):
            self.for_loop(s)  # type: ignore[arg-type]
        elif t is ast.While:
            s = cast(ast.While, s)
            self.expr(s.test)
            # a polling / consumer loop: what runs in it is not once per item of an
            # enclosing `for` (no loop rule applies inside it)
            index = len(self.f.loops)
            self.f.loops.append(Loop(s.lineno, "while", True, False))
            self.loop_stack.append((index, set()))
            self.body(s.body)
            self.loop_stack.pop()
            self.body(s.orelse)
        elif t is ast.If:
            s = cast(ast.If, s)
            self.if_stmt(s)
        elif t in (ast.With, ast.AsyncWith):
            self.with_stmt(s)  # type: ignore[arg-type]
        elif t is ast.Try or t.__name__ == "TryStar":
            for part in (s.body, *(h.body for h in s.handlers), s.orelse, s.finalbody):  # type: ignore[attr-defined]
                self.body(part)
        elif t in (ast.FunctionDef, ast.AsyncFunctionDef):
            self.inner.append(s)  # type: ignore[arg-type]  # walked on its own, after this one
            self.nested.setdefault(s.name, f"{self.f.qualname}.{s.name}")  # type: ignore[attr-defined]
        elif t is ast.Delete:
            for target in s.targets:  # type: ignore[attr-defined]
                key = self.dict_key(target.value) if isinstance(target, ast.Subscript) else None
                if key is not None:
                    self.mod.evicted.add(key)
        elif t is ast.Import or t is ast.ImportFrom:
            self.mod.add_import(s)  # type: ignore[arg-type]  # a function-local import
        elif t is ast.Global:
            self.globals.update(s.names)  # type: ignore[attr-defined]
        elif t is ast.Match:
            s = cast(ast.Match, s)
            self.expr(s.subject)
            for case in s.cases:
                self.body(case.body)
        elif t in (ast.Raise,):
            if s.exc is not None:  # type: ignore[attr-defined]
                self.expr(s.exc)  # type: ignore[attr-defined]
        elif t is ast.Assert:
            self.expr(s.test)  # type: ignore[attr-defined]

    def store(self, target: ast.expr, value: ast.expr | None, vt: TypeRef | None) -> None:
        if isinstance(target, ast.Name):
            name = target.id
            if name in self.globals:
                self.mod.evicted.add(("g", name))
                if _is_call(value) and ("v", ("g", name)) in self.guards:
                    self.f.builds_once = True  # built once, kept in a global
            if vt is not None:
                self.env[name] = vt
            if value is not None and self.from_io(value):
                self.io_names.add(name)
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                self.strings[name] = value.value
            if value is not None and self.is_spawn_value(value):
                self.spawned.append((name, value))  # type: ignore[arg-type]
            if isinstance(value, (ast.ListComp, ast.GeneratorExp)) and len(value.generators) == 1:
                self.lists_from_comp[name] = (value.elt, value.generators[0])
            self.assign_names(target)
        elif isinstance(target, ast.Attribute):
            self.expr(target.value)
            if isinstance(target.value, ast.Name) and target.value.id in ("self", "cls"):
                if self.f.cls is not None and vt is not None:
                    self.mod_attr_types(target.attr, vt)
                key = ("a", self.f.cls or "", target.attr)
                if value is not None and self.node.name != "__init__":
                    self.mod.evicted.add(key)  # replaced wholesale elsewhere: bounded by hand
                if _is_call(value) and ("v", ("a", target.attr)) in self.guards:
                    self.f.builds_once = True  # built once, kept on the object
                if (
                    self.node.name == "__init__"
                    and _is_empty_dict(value)
                    and _CACHE_ATTR.search(target.attr)
                ):
                    self.mod.cache_candidates.append((key, target, f"self.{target.attr}"))
        elif isinstance(target, ast.Subscript):
            self.expr(target.value)
            self.expr(target.slice)
            dkey = self.dict_key(target.value)
            registers = (
                isinstance(value, ast.Name)
                and value.id in self.params
                and _CALLABLE_NAME.search(value.id) is not None
            )
            if dkey is not None and _data_key(target.slice) and not registers:
                # (`registry[name] = fn` stores what it was given: a registration, not a
                # cache fill, which stores what it computed)
                self.usage(dkey, "write")
            if _is_call(value) and ("k", _state_key(target.value, self)) in self.guards:
                self.f.builds_once = True  # built once per key, kept in a dict
        else:
            self.assign_names(target)

    def from_io(self, value: ast.expr) -> bool:
        """Is ``value`` the result of I/O: an await, a blocking call, or read off a local
        that is (``proc.stdout.strip()``)? Follows the receiver chain only, no full walk."""
        node: ast.expr = value
        for _ in range(16):
            if isinstance(node, ast.Await):
                return True
            if isinstance(node, ast.Name):
                return node.id in self.io_names
            if isinstance(node, (ast.Attribute, ast.Subscript)):
                node = node.value
            elif isinstance(node, ast.Call):
                t = self.target_of(node.func)
                if t is not None and t[0] == "name" and self.mod.kfunctions.get(t[1]) == "blocking":
                    return True
                if not isinstance(node.func, ast.Attribute):
                    return False
                node = node.func.value
            else:
                return False
        return False

    def mod_attr_types(self, attr: str, vt: TypeRef) -> None:
        for c in self.mod.classes:
            if c.qualname == self.f.cls:
                c.attrs.setdefault(attr, vt)
                return

    def usage(self, key: tuple[str, ...], event: str) -> None:
        if self.node.name in ("<module>", "__init_subclass__", "__set_name__"):
            return  # filled once at import or class creation: a table, not a cache
        self.mod.usage.setdefault(key, {}).setdefault(self.f.qualname, set()).add(event)

    def dict_key(self, node: ast.expr) -> tuple[str, ...] | None:
        if isinstance(node, ast.Name):
            if node.id in self.env and node.id not in self.globals:
                return None
            return ("g", node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            base = node.value.id
            if base in ("self", "cls"):
                return ("a", self.f.cls or "", node.attr)
            if self.f.cls is not None and base == self.f.cls.rpartition(".")[2]:
                return ("a", self.f.cls, node.attr)
        return None

    def if_stmt(self, s: ast.If) -> None:
        self.expr(s.test)
        if self.f.is_async and not self.lock:
            self.lazy_init(s)
        state = _checked_state(s.test, self)
        if state is not None:
            self.guards.append(state)  # `if self._c is None:` ... `self._c = make()`: once
        if self.loop_stack and (_batch_guard(s.test) or _leaves(s.body)):
            # `if i % 100 == 0: commit()` / `if len(buf) >= N: flush()`: once per batch;
            # a branch that ends in return / raise / break runs once, not per item
            saved, self.loop_stack = self.loop_stack, []
            self.body(s.body)
            self.loop_stack = saved
        else:
            self.body(s.body)
        if state is not None:
            self.guards.pop()
        self.body(s.orelse)

    def with_stmt(self, s: ast.With | ast.AsyncWith) -> None:
        locked = False
        for item in s.items:
            self.expr(item.context_expr)
            ce = item.context_expr
            if self.is_lock(ce):
                locked = True
            if item.optional_vars is not None:
                vt = self.type_of(ce)
                self.store(item.optional_vars, None, vt)
        if locked:
            self.lock += 1
            if isinstance(s, ast.AsyncWith) or True:
                self.f.bounded = True
        self.body(s.body)
        if locked:
            self.lock -= 1

    def is_lock(self, ce: ast.expr) -> bool:
        node = ce.func if isinstance(ce, ast.Call) else ce
        text = _dotted(node)
        if text and _LOCK_NAME.search(text[-1]):
            return True
        t = self.type_of(node)
        if t is not None and t[0] == "var":
            t = self.mod.variables.get(t[1].rpartition(".")[2])
        if t is not None and t[0] in ("ret", "annot"):
            return CONSTRUCTORS.get(t[1]) == "Lock" or ANNOTATIONS.get(t[1]) == "Lock"
        return t == ("known", "Lock")

    def for_loop(self, s: ast.For | ast.AsyncFor) -> None:
        self.expr(s.iter)
        kind = "async for" if isinstance(s, ast.AsyncFor) else "for"
        skip = _small_or_retry(s.iter, s.target)
        ok = kind == "for" and not skip and self.f.is_async and _independent(s)
        index = len(self.f.loops)
        self.f.loops.append(Loop(s.lineno, kind, skip, ok))
        assigned: set[str] = set()
        self.loop_stack.append((index, assigned))
        self.assign_names(s.target)
        it = self.type_of(s.iter)
        if it is not None and isinstance(s.target, ast.Name):
            self.env[s.target.id] = ("elem", it)  # for post in Post.objects.filter(...)
        if isinstance(s.iter, ast.Name) and s.iter.id in self.locals:
            pass
        self.body(s.body)
        self.loop_stack.pop()
        self.body(s.orelse)

    # expressions -------------------------------------------------------------------------

    def expr(self, node: ast.expr | None, awaited: bool = False) -> None:
        t = type(node)
        if t is ast.Constant or node is None:
            return
        if t is ast.Name:
            if type(node.ctx) is ast.Load:  # type: ignore[attr-defined]
                self.loads[node.id] = self.loads.get(node.id, 0) + 1  # type: ignore[attr-defined]
            return
        if t is ast.Call:
            self.call(node, awaited)  # type: ignore[arg-type]
        elif t is ast.Await:
            self.expr(node.value, True)  # type: ignore[attr-defined]
        elif t is ast.Name:
            if isinstance(node.ctx, ast.Load):  # type: ignore[attr-defined]
                self.loads[node.id] = self.loads.get(node.id, 0) + 1  # type: ignore[attr-defined]
        elif t is ast.Attribute:
            value = node.value  # type: ignore[attr-defined]
            while type(value) is ast.Attribute:
                value = value.value  # a.b.c.d: one step per level, not one call
            self.expr(value)
        elif t in (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp):
            self.comprehension(node)  # type: ignore[arg-type]
        elif t is ast.Lambda:
            pass
        elif t is ast.Compare:
            node = cast(ast.Compare, node)
            self.expr(node.left)
            for op, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, (ast.In, ast.NotIn)):
                    key = self.dict_key(right)
                    if key is not None:
                        self.usage(key, "read")
                self.expr(right)
        elif t is ast.Subscript:
            node = cast(ast.Subscript, node)
            if isinstance(node.ctx, ast.Load):
                key = self.dict_key(node.value)
                if key is not None:
                    self.usage(key, "read")
            self.expr(node.value)
            self.expr(node.slice)
        elif t is ast.Constant:
            pass
        elif t is ast.BinOp:
            self.expr(node.left)  # type: ignore[attr-defined]
            self.expr(node.right)  # type: ignore[attr-defined]
        elif t is ast.BoolOp or t is ast.JoinedStr:
            for v in node.values:  # type: ignore[attr-defined]
                self.expr(v)
        elif t in (ast.List, ast.Tuple, ast.Set):
            for v in node.elts:  # type: ignore[attr-defined]
                self.expr(v)
        elif t is ast.Dict:
            for k in node.keys:  # type: ignore[attr-defined]
                self.expr(k)
            for v in node.values:  # type: ignore[attr-defined]
                self.expr(v)
        elif t in (ast.FormattedValue, ast.Starred, ast.NamedExpr):
            self.expr(node.value)  # type: ignore[attr-defined]
        elif t is ast.UnaryOp:
            self.expr(node.operand)  # type: ignore[attr-defined]
        elif t is ast.IfExp:
            self.expr(node.test)  # type: ignore[attr-defined]
            self.expr(node.body)  # type: ignore[attr-defined]
            self.expr(node.orelse)  # type: ignore[attr-defined]
        elif t is ast.Slice:
            self.expr(node.lower)  # type: ignore[attr-defined]
            self.expr(node.upper)  # type: ignore[attr-defined]
            self.expr(node.step)  # type: ignore[attr-defined]
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child)

    def comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp
    ) -> None:
        gens = node.generators
        self.expr(gens[0].iter)
        index = len(self.f.loops)
        skip = _small_or_retry(gens[0].iter, gens[0].target)
        self.f.loops.append(Loop(node.lineno, "comp", skip, False))
        assigned: set[str] = set()
        self.loop_stack.append((index, assigned))
        for i, g in enumerate(gens):
            self.assign_names(g.target)
            if i:
                self.expr(g.iter)
            for cond in g.ifs:
                self.expr(cond)
        if isinstance(node, ast.DictComp):
            self.expr(node.key)
            self.expr(node.value)
        else:
            self.expr(node.elt)
        self.loop_stack.pop()

    def is_spawn(self, call: ast.Call) -> bool:
        t = self.target_of(call.func)
        if t is None:
            return False
        if t[0] == "name":
            return FUNCTIONS.get(t[1]) == "spawn" or t[1] in (
                "asyncio.create_task",
                "asyncio.ensure_future",
            )
        if t[0] == "meth" and t[2][-1] in ("create_task", "ensure_future") and len(t[2]) == 1:
            recv = t[1]
            if recv in (
                ("known", "asyncio.Loop"),
                ("ret", "asyncio.get_running_loop"),
                ("ret", "asyncio.get_event_loop"),
            ):
                return True
            func = call.func
            func = cast(ast.Attribute, func)
            base = func.value
            name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
            return name in ("loop", "_loop", "event_loop") and recv[0] != "known"
        return False

    def is_spawn_value(self, value: ast.expr) -> bool:
        return isinstance(value, ast.Call) and self.is_spawn(value)

    def dangling(self, call: ast.Call) -> None:
        self.mod.local.append(
            Local(
                "SLP502",
                call.lineno,
                call.col_offset,
                call.end_lineno or call.lineno,
                call.end_col_offset or 0,
                f"the task `{ast.unparse(call.func)}(...)` starts is not kept: it can be "
                "garbage-collected mid-flight and its exception is never seen",
            )
        )

    def call(self, node: ast.Call, awaited: bool) -> None:
        func = node.func
        target = self.target_of(func)
        is_attr = type(func) is ast.Attribute
        # the receiver's own calls first (Session().execute: Session() is a call too)
        if is_attr:
            self.expr(func.value)  # type: ignore[attr-defined]
        kind = target[0] if target is not None else ""
        last = target[2][-1] if kind == "meth" else ""  # type: ignore[index]
        dotted = target[1] if kind == "name" else ""  # type: ignore[index]
        offload = dotted in OFFLOADERS or last in ("run_in_executor", "submit", "run_sync")
        per_item = (
            dotted in PER_ITEM_RUNNERS
            or (dotted.startswith("slipstream") and dotted.rpartition(".")[2] in _RUNNER_NAMES)
            or last in PER_ITEM_METHODS
        )
        passes: list[Target] = []
        if (
            is_attr
            and func.attr == "append"  # type: ignore[attr-defined]
            and type(func.value) is ast.Name  # type: ignore[attr-defined]
            and node.args
            and self.loop_stack
        ):
            self.appended[func.value.id] = node.args[0]  # type: ignore[attr-defined]
        if offload or per_item or (awaited and dotted in _AWAIT_THROUGH):
            for i, a in enumerate([*node.args, *(k.value for k in node.keywords)]):
                if i == 0 and awaited and dotted in _AWAIT_THROUGH:
                    self.expr(a, True)  # await asyncio.wait_for(query(...)): it is awaited
                    continue
                if isinstance(a, (ast.Name, ast.Attribute)) and (offload or per_item):
                    t = self.target_of(a)
                    if t is not None:
                        passes.append(t)
                        if per_item:
                            passes.append(("per_item", *t))
                    if isinstance(a, ast.Name):
                        self.loads[a.id] = self.loads.get(a.id, 0) + 1
                    continue
                self.expr(a)
        else:
            for a in node.args:
                if type(a) is not ast.Constant:
                    self.expr(a)
            for k in node.keywords:
                if type(k.value) is not ast.Constant:
                    self.expr(k.value)
        if target is None:
            return
        # dict-as-cache events on `X.get(k)`, `X.pop(k)`, `len(X)`
        if is_attr:
            key = self.dict_key(func.value)  # type: ignore[attr-defined]
            if key is not None:
                attr = func.attr  # type: ignore[attr-defined]
                if attr in ("get", "setdefault", "__contains__", "keys", "items", "values"):
                    self.usage(key, "read")
                    if attr == "setdefault" and node.args and _data_key(node.args[0]):
                        self.usage(key, "write")
                elif attr in ("pop", "popitem", "clear"):
                    self.mod.evicted.add(key)
                elif attr == "update":
                    self.usage(key, "write")
        elif dotted == "builtins.len" and node.args:
            key = self.dict_key(node.args[0])
            if key is not None:
                self.mod.evicted.add(key)
        if offload:
            return  # the call that offloads is not itself the work
        if not passes:
            if kind == "name":
                if _unknowable(dotted, self.mod.kfunctions):
                    return  # len(), os.path.join(): no effect to find, not a project function
                if dotted == "builtins.open" and node.args and _procfs(node.args[0]):
                    return  # /proc and /sys are kernel memory, not a disk
                if dotted == "socket.getaddrinfo" and _numeric_only(node, self.mod.numeric):
                    return  # numeric host flags: no DNS lookup, nothing blocks
            elif _untyped(target[1], self.mod.kfunctions):
                return  # a method of an unannotated parameter: nothing can ever resolve it
        loop = self.loop_stack[-1] if self.loop_stack else None
        # invariance only matters for calls of a named function or class (SLP103)
        invariant_kind = self.mod.kfunctions.get(dotted) == "invariant" if dotted else False
        arg_names = _names_in(node) if loop is not None or invariant_kind else set()
        invariant = loop is None or not (arg_names & loop[1])
        # invariant work a caller's loop repeats: its inputs come from the helper's
        # parameters, constants and globals, not from I/O done here (`json.loads(proc.stdout)`
        # of a subprocess differs on every call)
        const = invariant_kind and not (arg_names & self.io_names)
        sql = None
        if is_attr and func.attr in ("execute", "scalar", "scalars") and node.args:  # type: ignore[attr-defined]
            sql = self.sql_kind(node.args[0])
        call = Call(
            target=target,
            line=node.lineno,
            col=node.col_offset,
            end_line=node.end_lineno or node.lineno,
            end_col=node.end_col_offset or 0,
            text=_short(func),
            awaited=awaited,
            loop=loop[0] if loop is not None else -1,
            in_lock=self.lock > 0,
            sql=sql,
            invariant_args=invariant,
            const_args=const,
            passes=tuple(passes),
        )
        self.f.calls.append(call)
        if dotted == "asyncio.gather":
            self.gather(node, call)

    def sql_kind(self, arg: ast.expr) -> str | None:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return _sql_word(arg.value)
        if isinstance(arg, ast.JoinedStr) and arg.values:
            first = arg.values[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                return _sql_word(first.value)
            return None
        if isinstance(arg, ast.Name) and arg.id in self.strings:
            return _sql_word(self.strings[arg.id])
        if isinstance(arg, ast.Name) and arg.id in self.mod.strings:
            return _sql_word(self.mod.strings[arg.id])  # INSERT_EVENT = "INSERT INTO ..."
        if isinstance(arg, ast.BinOp):
            return self.sql_kind(arg.left)
        if isinstance(arg, ast.Call):
            node: ast.expr = arg
            while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in ("insert", "update", "delete"):
                    return "write"
                if node.func.attr == "select":
                    return "query"
                node = node.func.value
            if isinstance(node, ast.Call):
                t = self.target_of(node.func)
                if t is not None and t[0] == "name":
                    d = t[1]
                    if d in SA_WRITE_CONSTRUCTS or d.rpartition(".")[2] in (
                        "insert",
                        "update",
                        "delete",
                    ):
                        return "write"
                    if d.rpartition(".")[2] == "text" and node.args:
                        return self.sql_kind(node.args[0])
                    if d.rpartition(".")[2] == "select":
                        return "query"
        return None

    def gather(self, node: ast.Call, call: Call) -> None:
        for a in node.args:
            if not isinstance(a, ast.Starred):
                continue
            v = a.value
            comp: tuple[ast.expr, ast.comprehension] | None = None
            if isinstance(v, (ast.ListComp, ast.GeneratorExp)) and len(v.generators) == 1:
                comp = (v.elt, v.generators[0])
            elif isinstance(v, ast.Name) and v.id in self.lists_from_comp:
                comp = self.lists_from_comp[v.id]
            elif isinstance(v, ast.Name) and v.id in self.appended:
                comp = (self.appended[v.id], None)  # type: ignore[assignment]
            if comp is None:
                continue
            elt, gen = comp
            if gen is not None and _small_or_retry(gen.iter, gen.target):
                continue
            inner = elt
            if isinstance(inner, ast.Call) and self.is_spawn(inner) and inner.args:
                inner = inner.args[0]
            elt_target = self.target_of(inner.func) if isinstance(inner, ast.Call) else None
            batch = -1
            if gen is not None and isinstance(gen.iter, ast.Name):
                # gather over a batch the enclosing loop hands out is bounded by the batch
                for index, names in self.loop_stack:
                    if gen.iter.id in names:
                        batch = index
            if batch >= 0:
                continue
            self.f.gathers.append((call, elt_target, node.lineno))

    def lazy_init(self, s: ast.If) -> None:
        state = _checked_state(s.test, self)
        if state is None:
            return
        seen_await = False
        for stmt in s.body:
            if _assigns(stmt, state, self) and (seen_await or _has_await(_value_of(stmt))):
                self.mod.local.append(
                    Local(
                        "SLP503",
                        s.lineno,
                        s.col_offset,
                        s.test.end_lineno or s.lineno,
                        s.test.end_col_offset or 0,
                        f"`{ast.unparse(s.test)}` is checked, then set after an `await`: two "
                        "callers arriving together both create it",
                    )
                )
                return
            if isinstance(stmt, ast.AsyncWith) and any(
                self.is_lock(i.context_expr) for i in stmt.items
            ):
                return  # the assignment, if any, is under a lock
            if _has_await(stmt):
                seen_await = True


def _value_of(stmt: ast.stmt) -> ast.AST:
    return getattr(stmt, "value", None) or stmt


def _has_await(node: ast.AST | None) -> bool:
    if node is None:
        return False
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.Await, ast.AsyncWith, ast.AsyncFor)):
            return True
        if (
            isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef))
            and n is not node
        ):
            continue
        stack.extend(ast.iter_child_nodes(n))
    return False


def _state_key(node: ast.expr, w: _FuncWalker) -> tuple[str, ...] | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        if node.value.id in ("self", "cls") or (
            w.f.cls and node.value.id == w.f.cls.rpartition(".")[2]
        ):
            return ("a", node.attr)
        return None
    if isinstance(node, ast.Name) and (
        node.id in w.globals or (node.id in w.mod.assigned and node.id not in w.env)
    ):
        return ("g", node.id)
    return None


def _checked_state(test: ast.expr, w: _FuncWalker) -> tuple[Any, ...] | None:
    """The shared state an ``if`` checks for absence: ``x is None``, ``not x``, ``k not in x``."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        for v in test.values:
            found = _checked_state(v, w)
            if found is not None:
                return found
        return None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        key = _state_key(test.operand, w)
        return ("v", key) if key else None
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        op, right = test.ops[0], test.comparators[0]
        if isinstance(op, ast.Is) and isinstance(right, ast.Constant) and right.value is None:
            key = _state_key(test.left, w)
            return ("v", key) if key else None
        if isinstance(op, ast.NotIn):
            key = _state_key(right, w)
            return ("k", key) if key else None
    return None


def _assigns(stmt: ast.stmt, state: tuple[Any, ...], w: _FuncWalker) -> bool:
    targets: list[ast.expr] = []
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        targets = [stmt.target]
    kind, key = state
    for t in targets:
        if kind == "v" and _state_key(t, w) == key:
            return True
        if kind == "k" and isinstance(t, ast.Subscript) and _state_key(t.value, w) == key:
            return True
    return False


def _short(func: ast.expr) -> str:
    """The called expression as text, cheaply (``session.commit``, ``get_db().execute``)."""
    parts: list[str] = []
    node = func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif isinstance(node, ast.Call):
        parts.append(_short(node.func) + "()")
    elif isinstance(node, ast.Subscript):
        parts.append(_short(node.value) + "[...]")
    else:
        parts.append("(...)")
    text = ".".join(reversed(parts))
    return text if len(text) <= 60 else text[:57] + "..."


# Keys that come from the program, not its data (a type, a function, a module or method name,
# a URL scheme): a dict keyed by them is bounded by the code and is not a leak.
_CODE_KEY = re.compile(
    r"^_?(cls|klass|class_?|type_?|typ|tp|t|obj_type|method(_?name)?|meth|func|fn|f|"
    r"callable|modname|module(_?name)?|mod|scheme|protocol|attr(_?name)?|field(_?name)?|"
    r"kind|dialect|backend|driver|op|opname|code)$",
    re.I,
)


def _unknowable(dotted: str, functions: dict[str, str]) -> bool:
    """A call of a builtin or a standard-library function the knowledge table does not list
    (``len``, ``os.path.join``): phase 2 could never find an effect in it. Keeping such calls
    out of the facts makes them a third smaller (and the cache as much faster)."""
    top = dotted.partition(".")[0]
    if top != "builtins" and top not in _STDLIB:
        return False
    return dotted not in functions and dotted not in CONSTRUCTORS and dotted not in OFFLOADERS


def _untyped(t: TypeRef | None, functions: dict[str, str]) -> bool:
    """Does this receiver type start from an unannotated parameter, from nothing, or from a
    standard-library call whose result type nobody knows (``logging.getLogger()``)?"""
    for _ in range(32):
        if t is None:
            return True
        kind = t[0]
        if kind == "param":
            return True
        if kind in ("attr", "sub", "call", "meth_ret", "elem"):
            t = t[1]
            continue
        if kind in ("ret", "nameref", "annot"):
            return _unknowable(t[1], functions) and t[1] not in ANNOTATIONS
        return False
    return True


def _procfs(arg: ast.expr) -> bool:
    if isinstance(arg, ast.JoinedStr) and arg.values:
        arg = arg.values[0]
    return (
        isinstance(arg, ast.Constant)
        and isinstance(arg.value, str)
        and arg.value.startswith(("/proc/", "/sys/"))
    )


def _numeric_only(node: ast.AST, constants: set[str]) -> bool:
    """Does this expression pass ``AI_NUMERICHOST`` (getaddrinfo then never does DNS)?"""
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute) and n.attr == "AI_NUMERICHOST":
            return True
        if isinstance(n, ast.Name) and (n.id == "AI_NUMERICHOST" or n.id in constants):
            return True
    return False


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _leaves(body: list[ast.stmt]) -> bool:
    """Does this block end by leaving the loop (return, raise, break)?"""
    return bool(body) and isinstance(body[-1], (ast.Return, ast.Raise, ast.Break))


def _is_call(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Await):
        value = value.value
    return isinstance(value, ast.Call)


def _batch_guard(test: ast.expr) -> bool:
    """``i % 100 == 0``, ``len(buf) >= size``, ``count >= BATCH``: a test that holds once per
    batch, not once per item."""
    for n in ast.walk(test):
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod):
            return True
        if isinstance(n, ast.Compare) and any(isinstance(o, (ast.GtE, ast.Gt)) for o in n.ops):
            for side in (n.left, *n.comparators):
                if isinstance(side, ast.Call) and getattr(side.func, "id", "") == "len":
                    return True
    return False


def _data_key(key: ast.expr) -> bool:
    """Can this subscript key take an unbounded number of values (ids, URLs, user input)?"""
    if isinstance(key, ast.Constant):
        return False
    if isinstance(key, ast.Name):
        return not _CODE_KEY.match(key.id)
    if isinstance(key, ast.Attribute):
        return key.attr not in ("__name__", "__qualname__", "__class__", "__module__")
    if isinstance(key, ast.Call):
        d = _dotted(key.func)
        return not (d and d[-1] in ("type", "getattr"))
    if isinstance(key, ast.Tuple):
        return any(_data_key(e) for e in key.elts)
    return True


def _is_empty_dict(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Dict):
        return not value.keys
    if isinstance(value, ast.Call):
        d = _dotted(value.func)
        if not d:
            return False
        if not value.args and not value.keywords and d[-1] in ("dict", "OrderedDict"):
            return True
        return d[-1] == "defaultdict"
    return False


def _names_in(node: ast.AST) -> set[str]:
    names: set[str] = set()
    stack: list[ast.AST] = (
        [*node.args, *(k.value for k in node.keywords)] if isinstance(node, ast.Call) else [node]
    )
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        stack.append(node.func.value)
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Name):
            names.add(n.id)
        else:
            stack.extend(ast.iter_child_nodes(n))
    return names


def _small_or_retry(it: ast.expr, target: ast.expr) -> bool:
    """A loop that is not once per item: retries, a small literal, chunks, ``for _ in
    range(n)`` (n of something on purpose, such as shards)."""
    if isinstance(target, ast.Name) and (_RETRY_NAME.search(target.id) or target.id == "_"):
        return True
    if isinstance(it, (ast.List, ast.Tuple, ast.Set)):
        return len(it.elts) <= _SMALL
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range":
        args = it.args
        if len(args) == 3:
            return True  # range(0, n, size): one iteration per chunk
        if len(args) == 1 and isinstance(args[0], ast.Constant) and isinstance(args[0].value, int):
            return args[0].value <= _SMALL
        if len(args) >= 2 and all(isinstance(a, ast.Constant) for a in args[:2]):
            lo, hi = args[0].value, args[1].value  # type: ignore[attr-defined]
            return isinstance(lo, int) and isinstance(hi, int) and hi - lo <= _SMALL
    return False


def _independent(loop: ast.For | ast.AsyncFor) -> bool:
    """No break/return, no throttle, not iterating as_completed or a queue, and no value carried
    from one iteration to the next (a name read before it is assigned in the body)."""
    it = loop.iter
    if isinstance(it, ast.Call):
        d = _dotted(it.func)
        if d and d[-1] in ("as_completed", "iter", "enumerate") and d[-1] != "enumerate":
            return False
    assigned: set[str] = set()
    targets: set[str] = set()
    _stores(loop.target, targets)
    body_assigned: set[str] = set()
    bound: set[str] = set()  # inner loop / comprehension / with targets: bound before use
    for s in loop.body:
        for n in ast.walk(s):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                body_assigned.add(n.id)
            elif isinstance(n, (ast.For, ast.AsyncFor, ast.comprehension)):
                _stores(n.target, bound)
            elif isinstance(n, ast.withitem) and n.optional_vars is not None:
                _stores(n.optional_vars, bound)
    carried = body_assigned - targets - bound
    stack: list[ast.AST] = list(loop.body)
    for s in loop.body:
        reads: set[str] = set()
        writes: set[str] = set()
        for n in ast.walk(s):
            if isinstance(n, (ast.Break, ast.Return)):
                return False
            if isinstance(n, ast.Await) and isinstance(n.value, ast.Call):
                d = _dotted(n.value.func)
                if d and d[-1] == "sleep":
                    return False
            if isinstance(n, ast.Name):
                if isinstance(n.ctx, ast.Load):
                    reads.add(n.id)
                else:
                    writes.add(n.id)
        aug = (
            {s.target.id}
            if isinstance(s, ast.AugAssign) and isinstance(s.target, ast.Name)
            else set()
        )
        if (reads - aug) & (carried - assigned):
            return False
        assigned |= writes
    del stack
    return True


def _stores(target: ast.expr, out: set[str]) -> None:
    for n in ast.walk(target):
        if isinstance(n, ast.Name):
            out.add(n.id)


class _Extractor:
    def __init__(self, mod: _Module, tree: ast.Module):
        self.mod = mod
        self.tree = tree

    def run(self) -> None:
        mod = self.mod
        body = self.tree.body
        # pass 1: names defined at module level, imports, module variables' types
        for s in _flatten(body):
            if isinstance(s, (ast.Import, ast.ImportFrom)):
                mod.add_import(s)
            elif isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                mod.defs.add(s.name)
        top = _FuncWalker.__new__(_FuncWalker)
        fake = Func(f"{mod.module}.<module>", "<module>", 1, False, None, False, False, False, None)
        top.__init__(mod, fake, ast.FunctionDef(name="<module>", body=[]), {}, {})  # type: ignore[misc, call-arg]
        for s in _flatten(body):
            if isinstance(s, (ast.Assign, ast.AnnAssign)):
                for t in s.targets if isinstance(s, ast.Assign) else [s.target]:
                    if isinstance(t, ast.Name):
                        mod.assigned.add(t.id)
            if (
                isinstance(s, (ast.Assign, ast.AnnAssign))
                and isinstance(s.value, ast.Constant)
                and isinstance(s.value.value, str)
            ):
                for t in s.targets if isinstance(s, ast.Assign) else [s.target]:
                    if isinstance(t, ast.Name):
                        mod.strings[t.id] = s.value.value
            if isinstance(s, ast.Assign) and _numeric_only(s.value, set()):
                mod.numeric.update(t.id for t in s.targets if isinstance(t, ast.Name))
            bound = _binding(s, top)
            if bound is not None:
                name, vt, empty_dict = bound
                if vt is not None:
                    mod.variables[name] = vt
                if empty_dict:
                    mod.cache_candidates.append((("g", name), s, name))
        # module-level code runs once, but its loops still cost: walk it as a function
        top.node = ast.FunctionDef(
            name="<module>",
            body=[
                s
                for s in _flatten(body)
                if not isinstance(
                    s,
                    (
                        ast.FunctionDef,
                        ast.AsyncFunctionDef,
                        ast.ClassDef,
                        ast.Import,
                        ast.ImportFrom,
                    ),
                )
            ],
        )  # type: ignore[call-arg]
        top.run()
        if fake.calls:
            mod.functions.append(fake)
        for s in _flatten(body):
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.function(s, None, f"{mod.module}.{s.name}", s.name)
            elif isinstance(s, ast.ClassDef):
                self.klass(s)
        self.caches()

    def klass(self, node: ast.ClassDef) -> None:
        mod = self.mod
        qual = f"{mod.module}.{node.name}"
        bases = []
        for b in node.bases:
            if isinstance(b, ast.Subscript):
                b = b.value  # class ProductRepository(Repository[Product]): Repository
            d = _dotted(b)
            if d:
                head = mod.imports.get(d[0])
                bases.append(".".join([head, *d[1:]]) if head else f"{mod.module}.{'.'.join(d)}")
        attrs: dict[str, TypeRef] = {}
        methods = []
        facts = ClassFacts(qual, tuple(bases), attrs, frozenset())
        mod.classes.append(facts)
        walker = _FuncWalker.__new__(_FuncWalker)
        fake = Func(qual, node.name, node.lineno, False, qual, False, False, False, None)
        walker.__init__(mod, fake, ast.FunctionDef(name="<class>", body=[]), {}, {})  # type: ignore[misc, call-arg]
        for s in node.body:
            bound = _binding(s, walker)
            if bound is not None:
                name, t, empty_dict = bound
                if t is not None:
                    attrs[name] = t
                if empty_dict:
                    mod.cache_candidates.append((("a", qual, name), s, f"{node.name}.{name}"))
            elif isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
                methods.append(s.name)
        facts.methods = frozenset(methods)
        # __init__ first, so attribute types are known to the other methods
        ordered = sorted(
            (s for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))),
            key=lambda s: s.name != "__init__",
        )
        for s in ordered:
            self.function(s, qual, f"{qual}.{s.name}", f"{node.name}.{s.name}")

    def function(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        cls: str | None,
        qual: str,
        name: str,
        outer_env: dict[str, TypeRef] | None = None,
        outer_nested: dict[str, str] | None = None,
    ) -> None:
        mod = self.mod
        decorators = [self.decorator(d) for d in node.decorator_list]
        offloaded = any(d in OFFLOAD_DECORATORS for d, _ in decorators)
        memoised = any(
            d in MEMOISERS
            or d.rpartition(".")[2]
            in ("lru_cache", "cache", "cached", "alru_cache", "cached_property")
            for d, _ in decorators
        )
        handler = any(
            d in HANDLER_DECORATORS or (attr and d.rpartition(".")[2] in HANDLER_DECORATOR_ATTRS)
            for d, attr in decorators
        )
        task = handler and any(
            d.rpartition(".")[2] in ("task", "shared_task", "remote", "actor", "delayed")
            for d, _ in decorators
        )
        if (
            not handler
            and node.args.args
            and node.args.args[0].arg == "request"
            and isinstance(node, ast.AsyncFunctionDef)
        ):
            handler = True
        env: dict[str, TypeRef] = dict(outer_env or {})
        static = any(d.rpartition(".")[2] == "staticmethod" for d, _ in decorators)
        classm = any(d.rpartition(".")[2] == "classmethod" for d, _ in decorators)
        args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        if cls is not None and args and not static:
            env[args[0].arg] = ("nameref", cls) if classm else ("inst", cls)
            args = args[1:]
        for a in args:
            t = mod.annotation(a.annotation)
            env[a.arg] = t if t is not None else ("param", a.arg)
        for extra in (node.args.vararg, node.args.kwarg):
            if extra is not None:
                env[extra.arg] = ("param", extra.arg)
        func = Func(
            qual,
            name,
            node.lineno,
            isinstance(node, ast.AsyncFunctionDef),
            cls,
            memoised,
            handler,
            False,
            mod.annotation(node.returns),
            task=task,
            offloaded=offloaded,
        )
        nested = dict(outer_nested or {})
        for s in node.body:
            if type(s) in (ast.FunctionDef, ast.AsyncFunctionDef):
                nested[s.name] = f"{qual}.{s.name}"  # type: ignore[attr-defined]
        walker = _FuncWalker(mod, func, node, env, nested)
        walker.run()
        mod.functions.append(func)
        for s in walker.inner:
            self.function(
                s,
                None,
                f"{qual}.{s.name}",
                f"{name}.{s.name}",
                {k: v for k, v in walker.env.items() if v[0] != "param"},
                nested,
            )

    def decorator(self, d: ast.expr) -> tuple[str, bool]:
        node = d.func if isinstance(d, ast.Call) else d
        parts = _dotted(node)
        if not parts:
            return "", False
        head = self.mod.imports.get(parts[0])
        dotted = ".".join([head, *parts[1:]]) if head else ".".join(parts)
        return dotted, len(parts) > 1

    def caches(self) -> None:
        mod = self.mod
        for key, node, label in mod.cache_candidates:
            if key[0] == "a":
                k2 = key
                evicted = k2 in mod.evicted or ("a", "", key[2]) in mod.evicted
                uses = {**mod.usage.get(("a", "", key[2]), {}), **mod.usage.get(k2, {})}
            else:
                evicted = key in mod.evicted
                uses = mod.usage.get(key, {})
            if evicted:
                continue
            if any({"read", "write"} <= events for events in uses.values()):
                mod.local.append(
                    Local(
                        "SLP501",
                        node.lineno,  # type: ignore[attr-defined]
                        node.col_offset,  # type: ignore[attr-defined]
                        node.end_lineno or node.lineno,  # type: ignore[attr-defined]
                        node.end_col_offset or 0,  # type: ignore[attr-defined]
                        f"`{label}` is filled as a cache and nothing evicts from it or bounds "
                        "its size: when its keys come from data (ids, URLs, requests) it grows "
                        "for the life of the process",
                    )
                )


def _binding(s: ast.stmt, walker: _FuncWalker) -> tuple[str, TypeRef | None, bool] | None:
    """A module- or class-level ``name = value`` / ``name: T = value``: the name, its type and
    whether the value is an empty dict (a cache candidate)."""
    if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
        return s.targets[0].id, walker.type_of(s.value), _is_empty_dict(s.value)
    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name):
        t = walker.mod.annotation(s.annotation)
        if t is None and s.value is not None:
            t = walker.type_of(s.value)
        return s.target.id, t, _is_empty_dict(s.value)
    return None


def _flatten(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements of a body, with ``if``/``try`` blocks at that level opened (module-level
    ``try: import x except ImportError`` and ``if TYPE_CHECKING:``)."""
    out: list[ast.stmt] = []
    for s in body:
        if isinstance(s, ast.If):
            out.extend(_flatten(s.body))
            out.extend(_flatten(s.orelse))
        elif isinstance(s, ast.Try):
            out.extend(_flatten(s.body))
            for h in s.handlers:
                out.extend(_flatten(h.body))
            out.extend(_flatten(s.orelse))
            out.extend(_flatten(s.finalbody))
        else:
            out.append(s)
    return out


def extract(
    tree: ast.Module,
    module: str,
    path: str,
    is_package: bool,
    text: str,
    knowledge_functions: dict[str, str] | None = None,
) -> ModuleFacts:
    """The facts of one parsed file."""
    mod = _Module(module, path, is_package, dict(knowledge_functions or FUNCTIONS))
    _Extractor(mod, tree).run()
    return ModuleFacts(
        module=module,
        path=path,
        lines=text.count("\n") + 1,
        imports=mod.imports,
        functions=mod.functions,
        classes=mod.classes,
        variables=mod.variables,
        local=mod.local,
        noqa=noqa_lines(text),
    )
