"""Phase 2 of a scan: join every file's facts into one project, resolve names and receiver
types across modules, and compute each function's effect summary (does it query, write,
commit, build a client, block, do awaitable I/O, do invariant expensive work?), propagated
through the call graph to a fixed point. Recursion is safe: summaries only grow, and each
effect keeps the first (shortest found) chain to where it happens.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .facts import Call, ClassFacts, Func, ModuleFacts, Target, TypeRef
from .knowledge import (
    ANY_METHOD,
    BASES,
    CLIENT_TYPES,
    LLM_CALLS,
    LLM_TYPES,
    METHODS,
    NOT_IO,
    SYNC_TYPES,
    Knowledge,
)
from .model import ChainStep

__all__ = ["Effect", "Project"]

_MAX_CHAIN = 8
# the rules an effect kind leads to (codes and names), for suppressions at the effect's line
_CODES_OF = {
    "blocking": ("SLP401", "blocking-in-async"),
    "query": ("SLP201", "query-in-loop"),
    "write": ("SLP202", "write-in-loop"),
    "commit": ("SLP203", "commit-in-loop"),
    "client": ("SLP101", "client-in-loop", "SLP102", "client-per-call"),
    "invariant": ("SLP103", "invariant-in-loop"),
    "io": ("SLP301", "await-in-loop"),
}
_PER_ITEM = frozenset({"query", "write", "commit", "client", "invariant"})


@dataclass(frozen=True, slots=True)
class Effect:
    """``kind`` happens at the end of ``chain`` (the first step is the call it starts from).
    ``what``: the call that does it (``session.commit()``); ``const``: for invariant work,
    its arguments are constants or module-level names."""

    kind: str
    chain: tuple[ChainStep, ...]
    what: str
    const: bool = False
    type: str = ""


Resolved = tuple[str, str]  # ("known", K) | ("cls", qualname) | ("clsref", qualname)


class Project:
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
        self.summary: dict[str, dict[str, Effect]] = {}
        self.per_item: set[str] = set()
        self.threaded: set[str] = set()
        self._direct: dict[int, Any] = {}
        self._mro: dict[str, list[str]] = {}

    # -- names ---------------------------------------------------------------------------

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

    # -- types ---------------------------------------------------------------------------

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
            from .knowledge import ANNOTATIONS

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

    # -- what a call does ----------------------------------------------------------------

    def callee(self, target: Target) -> tuple[Func | None, str | None, str | None]:
        """(project function called, known effect, known type) of a call target."""
        k = self.knowledge
        if target[0] == "name":
            dotted = target[1]
            canon = self.canonical(dotted)
            if self.external(dotted):
                for name in (dotted, canon):
                    if name in k.functions:
                        return None, k.functions[name], None
                    if name in k.constructors:
                        return None, None, k.constructors[name]
            f = self.funcs.get(canon)
            if f is not None:
                return f, None, None
            if canon in self.variables:
                return self.callee(("call", ("var", canon)))
            if canon in self.classes:
                if self.derives(canon, "settings"):
                    return None, "invariant", None
                return self.method(canon, "__init__"), None, None
            # Model.objects.get / Repo.method through a class reference; db.users.find_one
            # on a module variable imported from another module
            parts = canon.split(".")
            for i in range(len(parts) - 1, 0, -1):
                owner = ".".join(parts[:i])
                if owner in self.classes:
                    return self._on_type(("clsref", owner), tuple(parts[i:]))
                if owner in self.variables:
                    return self._on_type(self.resolve(("var", owner)), tuple(parts[i:]))
            return None, None, None
        if target[0] == "meth":
            base = self.resolve(target[1])
            return self._on_type(base, target[2])
        if target[0] == "call":
            base = self.resolve(target[1])
            if base is not None and base[0] == "clsref":
                return self.method(base[1], "__init__"), None, None
            if base is not None and base[0] == "known":
                return None, None, None
        return None, None, None

    def _on_type(
        self, base: Resolved | None, attrs: tuple[str, ...]
    ) -> tuple[Func | None, str | None, str | None]:
        if base is None:
            return None, None, None
        if base[0] == "known" and base[1] in LLM_TYPES and len(attrs) > 1:
            if attrs[-1] in LLM_CALLS:
                return None, LLM_TYPES[base[1]], base[1]
            return None, None, None
        for a in attrs[:-1]:
            base = self.attribute(base, a, 0)
            if base is None:
                return None, None, None
        m = attrs[-1]
        if base[0] == "known":
            K = base[1]
            user = self.knowledge.functions.get(f"{K}.{m}")
            if user is not None:
                return None, user, K
            entry = METHODS.get((K, m))
            if entry is not None:
                return None, entry[0], K
            if K in ANY_METHOD and m not in NOT_IO and not m.startswith("_"):
                return None, ANY_METHOD[K], K
            return None, None, K
        user = self.knowledge.functions.get(f"{base[1]}.{m}")
        if user is not None:
            return None, user, None
        if base[0] == "clsref" and m == "objects":
            return None, None, None
        f = self.method(base[1], m)
        if f is None and self.derives(base[1], "django.Model"):
            entry = METHODS.get(("django.Model", m))
            if entry is not None:
                return None, entry[0], "django.Model"
        return f, None, None

    def direct(self, call: Call) -> list[Effect] | Func | None:
        """The effects a call has by itself, or the project function it calls."""
        f, effect, typ = self.callee(call.target)
        if f is not None:
            return f
        out: list[Effect] = []
        what = f"{call.text}()"
        if effect == "sql":
            # DDL and session statements cost once, not per item; on a sync driver they
            # still block the event loop
            effect = {"write": "write", "ddl": None}.get(call.sql or "", "query")
            if effect is None and typ in SYNC_TYPES:
                effect = "blocking"
        if effect is not None and effect not in ("spawn",):
            out.append(Effect(effect, (), what, call.const_args, typ or ""))
            if typ in SYNC_TYPES and effect in ("query", "write", "commit") and not call.awaited:
                # (an awaited call is async: Django's acount(), aget())
                out.append(Effect("blocking", (), what, False, typ or ""))
            if effect in ("query", "write", "commit") and typ not in SYNC_TYPES and call.awaited:
                out.append(Effect("io", (), what, False, typ or ""))
        if call.target[0] == "name":
            k = self.knowledge
            built = None
            if self.external(call.target[1]):
                built = k.constructors.get(call.target[1]) or k.constructors.get(
                    self.canonical(call.target[1])
                )
            if built is not None and (built in CLIENT_TYPES or built.startswith("user:")):
                out.append(Effect("client", (), what, False, built))
        return out

    def _unsuppressed(self, effects: list[Effect], path: str, call: Call) -> list[Effect]:
        """A ``# noqa: SLP401`` on the line of the effect itself (``open(path)`` in a helper
        that only ever reads /proc) suppresses it everywhere it propagates to."""
        noqa = self.noqa.get(path)
        if not noqa or call.line not in noqa:
            return effects
        codes = noqa[call.line]
        if codes is None:
            return []
        gone = [e for e in effects if any(c in codes for c in _CODES_OF.get(e.kind, ()))]
        # an awaited query's I/O goes with it (it is the same call, not a second problem)
        return [
            e
            for e in effects
            if e not in gone and not (e.kind == "io" and any(g.what == e.what for g in gone))
        ]

    # -- summaries -----------------------------------------------------------------------

    def inherited(self, call: Call, g: Func) -> list[Effect]:
        """What calling project function ``g`` at ``call`` brings to the caller."""
        if g.memoised:
            return []
        if g.is_async and not call.awaited:
            return []  # a coroutine object made, not run here
        out = []
        for kind, e in self.summary.get(g.qualname, {}).items():
            if kind == "blocking" and (g.is_async or g.offloaded):
                continue
            if kind == "invariant" and not e.const:
                continue  # it depends on what g computes, not only on what g is given
            if kind in ("client", "blocking") and g.builds_once:
                continue  # built once and kept: the construction's cost is paid once
            if kind == "io" and not call.awaited:
                continue
            out.append(e)
        return out

    def effects_of(self, call: Call, owner: Func) -> list[Effect]:
        key = id(call)
        d = self._direct.get(key, self)
        if d is self:
            d = self.direct(call)
            if isinstance(d, list) and d:
                d = self._unsuppressed(d, self.func_path[owner.qualname], call)
            self._direct[key] = d
        if isinstance(d, Func):
            return self.inherited(call, d)
        return d or []

    def build(self) -> None:
        for f in self.funcs.values():
            for c in f.calls:
                for p in c.passes:
                    if p[0] == "per_item":
                        g, _, _ = self.callee(p[1:])
                        if g is not None:
                            self.per_item.add(g.qualname)
                    else:
                        g, _, _ = self.callee(p)
                        if g is not None:
                            self.threaded.add(g.qualname)
        for q in self.funcs:
            self.summary[q] = {}
        # a worklist: a function is looked at again only when a callee's summary grew
        callers: dict[str, set[str]] = {}
        for q, f in self.funcs.items():
            for c in f.calls:
                self.effects_of(c, f)  # resolves and caches the call's target
                d = self._direct.get(id(c))
                if isinstance(d, Func):
                    callers.setdefault(d.qualname, set()).add(q)
        pending = list(self.funcs)
        queued = set(pending)
        while pending:
            q = pending.pop()
            queued.discard(q)
            f = self.funcs[q]
            s = self.summary[q]
            path = self.func_path[q]
            grew = False
            for c in f.calls:
                for e in self.effects_of(c, f):
                    if e.kind in s or len(e.chain) >= _MAX_CHAIN:
                        continue
                    if c.loop >= 0 and e.kind in _PER_ITEM and not f.loops[c.loop].skip:
                        continue  # per item of f's own loop: f's own finding, not a cost
                        # of calling f (blocking and I/O still are)
                    step = ChainStep(path, c.line, f.name)
                    s[e.kind] = Effect(e.kind, (step, *e.chain), e.what, e.const, e.type)
                    grew = True
            if grew:
                for caller in callers.get(q, ()):
                    if caller not in queued:
                        queued.add(caller)
                        pending.append(caller)
