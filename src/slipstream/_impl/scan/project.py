"""The project as phase 2 sees it: every file's facts joined by qualified name, module aliases
and re-exports followed to where a name is defined, and receiver types resolved across
modules (``self.session`` is the ``Session`` that ``__init__`` stored; ``Model.objects`` is a
Django manager; a class inherits its bases' attributes and methods)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .facts import ClassFacts, Func, ModuleFacts, TypeRef
from .knowledge import Knowledge
from .knowledge.methods import LLM_TYPES, METHODS
from .knowledge.types import ANNOTATIONS, BASES

__all__ = ["ProjectIndex", "Resolved"]

Resolved = tuple[str, str]  # ("known", K) | ("cls", qualname) | ("clsref", qualname)


class ProjectIndex:
    """Every file's facts joined by qualified name, and what a name or a symbolic type refers
    to across the project: a project class, a known API type, or nothing."""

    def __init__(self, modules: Iterable[ModuleFacts], knowledge: Knowledge):
        self.knowledge = knowledge
        self.modules: dict[str, ModuleFacts] = {}
        self.funcs: dict[str, Func] = {}
        self.func_path: dict[str, str] = {}
        self.classes: dict[str, ClassFacts] = {}
        self.variables: dict[str, TypeRef] = {}
        self.noqa: dict[str, dict[int, frozenset[str] | None]] = {}
        for m in modules:
            self.modules[m.module] = m
            if m.noqa:
                self.noqa[m.path] = m.noqa
            for f in m.functions:
                self.funcs[f.qualname] = f
                self.func_path[f.qualname] = m.path
            for c in m.classes:
                self.classes[c.qualname] = c
            for name, t in m.variables.items():
                self.variables[f"{m.module}.{name}"] = t
        # Module names come from packages (the engine), so no suffix aliasing: aliasing
        # `socket` to a project's `redis/_parsers/socket.py` hid every socket call from the
        # knowledge table. What counts as the project is its top-level packages.
        self.tops = {m.partition(".")[0] for m in self.modules}
        self.tops.discard("builtins")
        self._canon: dict[str, str] = {}
        self._types: dict[Any, Resolved | None] = {}
        self._mro: dict[str, list[str]] = {}

    # -- names -------------------------------------------------------------------------------

    def external(self, dotted: str) -> bool:
        """Is ``dotted`` outside the scanned project? (The knowledge table describes other
        people's APIs; scanning SQLAlchemy itself, its Session is a project class.)"""
        return dotted.partition(".")[0] not in self.tops

    def canonical(self, dotted: str, depth: int = 0) -> str:
        """``dotted`` with module aliases and re-exports (``from .x import y`` in a package's
        ``__init__``) followed to where the name is defined."""
        hit = self._canon.get(dotted)
        if hit is not None:
            return hit
        result = dotted
        if depth < 8 and dotted not in self.funcs and dotted not in self.classes:
            parts = dotted.split(".")
            for i in range(len(parts) - 1, 0, -1):
                mod = ".".join(parts[:i])
                if mod not in self.modules:
                    continue
                real = mod
                rest = parts[i:]
                facts = self.modules[real]
                target = facts.imports.get(rest[0])
                if target is not None and target != dotted:
                    result = self.canonical(".".join([target, *rest[1:]]), depth + 1)
                else:
                    result = ".".join([real, *rest])
                break
        self._canon[dotted] = result
        return result

    # -- types -------------------------------------------------------------------------------

    def resolve(self, t: TypeRef | None, depth: int = 0) -> Resolved | None:
        if t is None or depth > 12:
            return None
        if t in self._types:
            return self._types[t]
        self._types[t] = None  # recursion guard
        r = self._resolve(t, depth)
        self._types[t] = r
        return r

    def _class_of(self, dotted: str) -> str | None:
        c = self.canonical(dotted)
        return c if c in self.classes else None

    def _resolve(self, t: TypeRef, depth: int) -> Resolved | None:
        kind = t[0]
        k = self.knowledge
        if kind == "known":
            return ("known", t[1])
        if kind in ("ret", "inst", "annot", "nameref"):
            dotted = t[1]
            canon = self.canonical(dotted)
            if self.external(dotted):
                table = k.constructors if kind in ("ret", "inst") else ANNOTATIONS
                hit = table.get(dotted) or table.get(canon)
                if hit is not None:
                    return ("known", hit)
            c = self._class_of(dotted)
            if c is not None:
                if kind == "nameref":
                    return ("clsref", c)
                return ("cls", c)
            if kind == "ret" and canon in self.funcs:
                return self.resolve(self.funcs[canon].returns, depth + 1)
            if kind in ("ret", "nameref") and canon in self.variables:
                var = ("var", canon)
                return self.resolve(("call", var) if kind == "ret" else var, depth + 1)
            if kind == "ret":
                # Model.objects.filter(...): a method chain from a project class reference
                parts = canon.split(".")
                for i in range(len(parts) - 1, 0, -1):
                    owner = ".".join(parts[:i])
                    if owner in self.classes and i < len(parts):
                        base: Resolved | None = ("clsref", owner)
                        for a in parts[i:-1]:
                            base = self.attribute(base, a, depth)
                        if base is not None and base[0] == "known":
                            entry = METHODS.get((base[1], parts[-1]))
                            return ("known", entry[1]) if entry and entry[1] else None
                        if base is not None:
                            f = self.method(base[1], parts[-1])
                            return self.resolve(f.returns, depth + 1) if f else None
                        return None
            if kind == "ret":
                # Class.method (a classmethod / factory) of a project class
                owner, _, meth = canon.rpartition(".")
                c = self._class_of(owner)
                if c is not None:
                    f = self.method(c, meth)
                    if f is not None:
                        return self.resolve(f.returns, depth + 1)
            return None
        if kind == "var":
            return self.resolve(self.variables.get(t[1]), depth + 1)
        if kind == "elem":
            base = self.resolve(t[1], depth + 1)
            if base is not None and base[0] == "known":
                entry = METHODS.get((base[1], "__iter__"))
                return ("known", entry[1]) if entry and entry[1] else None
            return None
        if kind == "attr":
            base = self.resolve(t[1], depth + 1)
            return self.attribute(base, t[2], depth)
        if kind == "sub":
            base = self.resolve(t[1], depth + 1)
            if base is not None and base[0] == "known":
                entry = METHODS.get((base[1], "__getitem__"))
                if entry and entry[1]:
                    return ("known", entry[1])
            return None
        if kind == "call":
            base = self.resolve(t[1], depth + 1)
            if base is None:
                return None
            if base[0] == "known":
                entry = METHODS.get((base[1], "__call__"))
                return ("known", entry[1]) if entry and entry[1] else None
            if base[0] == "clsref":
                return ("cls", base[1])
            return None
        if kind == "meth_ret":
            base = self.resolve(t[1], depth + 1)
            attrs = t[2]
            for a in attrs[:-1]:
                base = self.attribute(base, a, depth)
            if base is None:
                return None
            m = attrs[-1]
            if base[0] == "known":
                entry = METHODS.get((base[1], m))
                if entry and entry[1]:
                    return ("known", entry[1])
                return None
            f = self.method(base[1], m)
            if f is not None:
                return self.resolve(f.returns, depth + 1)
            return None
        return None

    def attribute(self, base: Resolved | None, name: str, depth: int) -> Resolved | None:
        if base is None:
            return None
        if base[0] == "known":
            entry = METHODS.get((base[1], "__getattr__"))
            if entry and entry[1]:
                return ("known", entry[1])
            if base[1] in LLM_TYPES:
                return ("known", base[1])  # client.chat.completions: still the LLM client
            return None
        if base[0] == "clsref" and name == "objects" and self.derives(base[1], "django.Model"):
            return ("known", "django.Manager")
        for c in self.mro(base[1]):
            t = self.classes[c].attrs.get(name)
            if t is not None:
                return self.resolve(t, depth + 1)
        return None

    def mro(self, qual: str) -> list[str]:
        hit = self._mro.get(qual)
        if hit is None:
            hit = self._mro[qual] = self._compute_mro(qual)
        return hit

    def _compute_mro(self, qual: str) -> list[str]:
        out: list[str] = []
        stack = [qual]
        while stack and len(out) < 16:
            q = stack.pop(0)
            if q in out or q not in self.classes:
                continue
            out.append(q)
            for b in self.classes[q].bases:
                c = self._class_of(b)
                if c is not None:
                    stack.append(c)
        return out

    def derives(self, qual: str, known: str) -> bool:
        stack, seen = [qual], set()
        while stack:
            q = stack.pop()
            if q in seen:
                continue
            seen.add(q)
            c = self.classes.get(q)
            if c is None:
                continue
            for b in c.bases:
                if BASES.get(b) == known or BASES.get(self.canonical(b)) == known:
                    return True
                bc = self._class_of(b)
                if bc is not None:
                    stack.append(bc)
        return False

    def method(self, cls: str, name: str) -> Func | None:
        for c in self.mro(cls):
            f = self.funcs.get(f"{c}.{name}")
            if f is not None:
                return f
        return None
