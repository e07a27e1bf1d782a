"""The walk of statements: assignments give names their types and feed the cache check,
``for`` / ``while`` open loops, ``with`` a lock bounds what runs in it, ``if x is None: x = ...``
guards build-once state, and a check-then-set across an ``await`` is a race (SLP503)."""

from __future__ import annotations

import ast
import re
from typing import Any, cast

from ..knowledge.types import ANNOTATIONS, CONSTRUCTORS
from .expressions import ExpressionWalker
from .records import Local, Loop, TypeRef
from .shapes import (
    batch_guard,
    dotted_parts,
    independent_iterations,
    is_call,
    is_data_key,
    is_empty_dict,
    leaves_loop,
    small_or_retry,
)

__all__ = ["FuncWalker"]

_LOCK_NAME = re.compile(r"lock|sem(aphore)?\b|_sem|limit|mutex|throttle", re.I)
# an instance dict named as a cache (`self._cache`, `self.query_counts`), not a store of
# record that merely mentions one (`self.cache_subnet_groups`)
_CACHE_ATTR = re.compile(r"(cache|cached|memo|seen|counts?)$", re.I)
# a parameter that is a function or class being registered (`registry[name] = handler`)
_CALLABLE_NAME = re.compile(
    r"(^|_)(fn|func|function|callback|cb|handler|hook|printer|factory|cls|klass|plugin|"
    r"decorated|wrapped|view|serializer|codec|backend)$",
    re.I,
)


class FuncWalker(ExpressionWalker):
    """Walks one function body, recording calls, loops and local findings."""

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
                if key is not None and is_data_key(s.target.slice):
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
                if is_call(value) and ("v", ("g", name)) in self.guards:
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
                if is_call(value) and ("v", ("a", target.attr)) in self.guards:
                    self.f.builds_once = True  # built once, kept on the object
                if (
                    self.node.name == "__init__"
                    and is_empty_dict(value)
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
            if dkey is not None and is_data_key(target.slice) and not registers:
                # (`registry[name] = fn` stores what it was given: a registration, not a
                # cache fill, which stores what it computed)
                self.usage(dkey, "write")
            if is_call(value) and ("k", _state_key(target.value, self)) in self.guards:
                self.f.builds_once = True  # built once per key, kept in a dict
        else:
            self.assign_names(target)

    def mod_attr_types(self, attr: str, vt: TypeRef) -> None:
        for c in self.mod.classes:
            if c.qualname == self.f.cls:
                c.attrs.setdefault(attr, vt)
                return

    def if_stmt(self, s: ast.If) -> None:
        self.expr(s.test)
        if self.f.is_async and not self.lock:
            self.lazy_init(s)
        state = _checked_state(s.test, self)
        if state is not None:
            self.guards.append(state)  # `if self._c is None:` ... `self._c = make()`: once
        if self.loop_stack and (batch_guard(s.test) or leaves_loop(s.body)):
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
        text = dotted_parts(node)
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
        skip = small_or_retry(s.iter, s.target)
        ok = kind == "for" and not skip and self.f.is_async and independent_iterations(s)
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


def _state_key(node: ast.expr, w: FuncWalker) -> tuple[str, ...] | None:
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


def _checked_state(test: ast.expr, w: FuncWalker) -> tuple[Any, ...] | None:
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


def _assigns(stmt: ast.stmt, state: tuple[Any, ...], w: FuncWalker) -> bool:
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
