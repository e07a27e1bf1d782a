"""One file's walk from the top: module-level imports, names and types first, then the module's
own code (walked as a function: its loops still cost), each class (``__init__`` first, so
attribute types are known to the other methods) and each function, nested ones after their
parent; then the cache candidates that nothing bounds (SLP501) and the ``# noqa`` lines."""

from __future__ import annotations

import ast
import re

from ..knowledge.calls import (
    FUNCTIONS,
    HANDLER_DECORATOR_ATTRS,
    HANDLER_DECORATORS,
    MEMOISERS,
    OFFLOAD_DECORATORS,
)
from .names import ModuleState
from .records import ClassFacts, Func, Local, ModuleFacts, TypeRef
from .shapes import dotted_parts, is_empty_dict, numeric_only
from .statements import FuncWalker

__all__ = ["extract", "noqa_lines"]

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


class _Extractor:
    def __init__(self, mod: ModuleState, tree: ast.Module):
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
        top = FuncWalker.__new__(FuncWalker)
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
            if isinstance(s, ast.Assign) and numeric_only(s.value, set()):
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
            d = dotted_parts(b)
            if d:
                head = mod.imports.get(d[0])
                bases.append(".".join([head, *d[1:]]) if head else f"{mod.module}.{'.'.join(d)}")
        attrs: dict[str, TypeRef] = {}
        methods = []
        facts = ClassFacts(qual, tuple(bases), attrs, frozenset())
        mod.classes.append(facts)
        walker = FuncWalker.__new__(FuncWalker)
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
        walker = FuncWalker(mod, func, node, env, nested)
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
        parts = dotted_parts(node)
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


def _binding(s: ast.stmt, walker: FuncWalker) -> tuple[str, TypeRef | None, bool] | None:
    """A module- or class-level ``name = value`` / ``name: T = value``: the name, its type and
    whether the value is an empty dict (a cache candidate)."""
    if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
        return s.targets[0].id, walker.type_of(s.value), is_empty_dict(s.value)
    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name):
        t = walker.mod.annotation(s.annotation)
        if t is None and s.value is not None:
            t = walker.type_of(s.value)
        return s.target.id, t, is_empty_dict(s.value)
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
    mod = ModuleState(module, path, is_package, dict(knowledge_functions or FUNCTIONS))
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
