"""The state of one function's walk and what its names refer to: the target of a call
(``("name", "app.db.save")`` or ``("meth", receiver type, attribute path)``), the symbolic type
of an expression, whether a value came from I/O, and the dict-as-cache bookkeeping. Types stay
symbolic (``TypeRef``) until phase 2 can see every file."""

from __future__ import annotations

import ast
import sys
from typing import Any

from ..knowledge.calls import OFFLOADERS
from ..knowledge.types import ANNOTATIONS, CONSTRUCTORS
from .names import ModuleState
from .records import Func, Target, TypeRef

__all__ = ["Resolver", "unknowable", "untyped"]

_STDLIB = frozenset(sys.stdlib_module_names) - {"asyncio"}
_NO = object()


class Resolver:
    """A function's walk state, and what its names, calls and values refer to."""

    def __init__(
        self,
        mod: ModuleState,
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


def unknowable(dotted: str, functions: dict[str, str]) -> bool:
    """A call of a builtin or a standard-library function the knowledge table does not list
    (``len``, ``os.path.join``): phase 2 could never find an effect in it. Keeping such calls
    out of the facts makes them a third smaller (and the cache as much faster)."""
    top = dotted.partition(".")[0]
    if top != "builtins" and top not in _STDLIB:
        return False
    return dotted not in functions and dotted not in CONSTRUCTORS and dotted not in OFFLOADERS


def untyped(t: TypeRef | None, functions: dict[str, str]) -> bool:
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
            return unknowable(t[1], functions) and t[1] not in ANNOTATIONS
        return False
    return True
