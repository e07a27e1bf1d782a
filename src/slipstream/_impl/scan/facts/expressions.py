"""The walk of expressions: every call is recorded with its target, loop, lock, awaited-ness,
SQL kind and argument facts; comprehensions are loops; dict reads, writes and evictions feed
the cache check; spawned tasks that are not kept are findings (SLP502)."""

from __future__ import annotations

import ast
import re
from typing import cast

from ..knowledge.calls import (
    FUNCTIONS,
    OFFLOADERS,
    PER_ITEM_METHODS,
    PER_ITEM_RUNNERS,
    SA_WRITE_CONSTRUCTS,
    SQL_DDL_WORDS,
    SQL_READ_WORDS,
    SQL_WRITE_WORDS,
)
from .records import Call, Local, Loop, Target
from .resolve import Resolver, unknowable, untyped
from .shapes import is_data_key, names_in, numeric_only, procfs, short_text, small_or_retry

__all__ = ["ExpressionWalker"]

_RUNNER_NAMES = frozenset({"map", "Stage", "stream"})
_AWAIT_THROUGH = frozenset({"asyncio.wait_for", "asyncio.shield", "asyncio.timeout"})


class ExpressionWalker(Resolver):
    """Walks expressions: records calls and comprehension loops."""

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
        skip = small_or_retry(gens[0].iter, gens[0].target)
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
                    if attr == "setdefault" and node.args and is_data_key(node.args[0]):
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
                if unknowable(dotted, self.mod.kfunctions):
                    return  # len(), os.path.join(): no effect to find, not a project function
                if dotted == "builtins.open" and node.args and procfs(node.args[0]):
                    return  # /proc and /sys are kernel memory, not a disk
                if dotted == "socket.getaddrinfo" and numeric_only(node, self.mod.numeric):
                    return  # numeric host flags: no DNS lookup, nothing blocks
            elif untyped(target[1], self.mod.kfunctions):
                return  # a method of an unannotated parameter: nothing can ever resolve it
        loop = self.loop_stack[-1] if self.loop_stack else None
        # invariance only matters for calls of a named function or class (SLP103)
        invariant_kind = self.mod.kfunctions.get(dotted) == "invariant" if dotted else False
        arg_names = names_in(node) if loop is not None or invariant_kind else set()
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
            text=short_text(func),
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
            if gen is not None and small_or_retry(gen.iter, gen.target):
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
