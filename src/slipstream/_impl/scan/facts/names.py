"""What the walk knows of one file as a whole: its imports (``from app.db import save as s``
makes ``s`` mean ``app.db.save``; relative imports are resolved against the package), the names
it defines, its module-level types and constants, and what an annotation names."""

from __future__ import annotations

import ast
import builtins

from .records import ClassFacts, Func, Local, TypeRef
from .shapes import dotted_parts, is_none

__all__ = ["ModuleState"]

_BUILTINS = frozenset(dir(builtins))


class ModuleState:
    """One file's names and module-level state, shared by the walks of its functions."""

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
            sides = [n for n in (node.left, node.right) if not is_none(n)]
            return self.annotation(sides[0]) if len(sides) == 1 else None
        if isinstance(node, ast.Subscript):
            outer = dotted_parts(node.value)
            name = outer[-1] if outer else ""
            inner = node.slice
            if name == "Union":
                members = inner.elts if isinstance(inner, ast.Tuple) else [inner]
                real = [m for m in members if not is_none(m)]
                return self.annotation(real[0]) if len(real) == 1 else None
            if name in ("Optional", "Annotated", "Final", "ClassVar"):
                first = inner.elts[0] if isinstance(inner, ast.Tuple) and inner.elts else inner
                return self.annotation(first)
            if name in ("AsyncIterator", "Iterator", "AsyncGenerator", "Generator", "Awaitable"):
                first = inner.elts[0] if isinstance(inner, ast.Tuple) and inner.elts else inner
                return self.annotation(first)
            return None
        parts = dotted_parts(node)
        if not parts:
            return None
        head = self.imports.get(parts[0])
        dotted = ".".join([head, *parts[1:]]) if head else f"{self.module}.{'.'.join(parts)}"
        return ("annot", dotted)  # phase 2 resolves it (the project's own, or a known API)
