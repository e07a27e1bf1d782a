"""Phase 2 of a scan: on the project index (``project``: every file's facts joined, names and
receiver types resolved across modules), compute each function's effect summary (does it
query, write, commit, build a client, block, do awaitable I/O, do invariant expensive work?),
propagated through the call graph to a fixed point. Recursion is safe: summaries only grow,
and each effect keeps the first (shortest found) chain to where it happens.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .facts import Call, Func, ModuleFacts, Target
from .knowledge import Knowledge
from .knowledge.methods import ANY_METHOD, LLM_CALLS, LLM_TYPES, METHODS, NOT_IO
from .knowledge.types import CLIENT_TYPES, SYNC_TYPES
from .model import ChainStep
from .project import ProjectIndex, Resolved

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


class Project(ProjectIndex):
    """The index, and each function's effect summary: what calling it does, with the chain of
    calls to where it happens."""

    def __init__(self, modules: Iterable[ModuleFacts], knowledge: Knowledge):
        super().__init__(modules, knowledge)
        self.summary: dict[str, dict[str, Effect]] = {}
        self.per_item: set[str] = set()
        self.threaded: set[str] = set()
        self._direct: dict[int, Any] = {}

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
        for known in ("django.Model", "loader.DataLoader") if f is None else ():
            if self.derives(base[1], known):  # a method the project class inherits
                entry = METHODS.get((known, m))
                if entry is not None:
                    return None, entry[0], known
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

    # -- summaries ---------------------------------------------------------------------------

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
