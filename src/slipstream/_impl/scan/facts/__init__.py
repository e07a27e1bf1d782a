"""Phase 1 of a scan, one file at a time: parse it once and reduce it to *facts*, small picklable
records of what each function calls, in which context (a loop, ``await``, a lock, ``async def``)
and on what receiver type, plus the findings that need nothing beyond the file (unbounded
caches, dangling tasks, lazy-init races). Facts are what the cache stores and what the worker
processes send back; phase 2 (``effects``) joins them across the project.

Names are resolved as far as the file allows: ``from app.db import save as s; s(x)`` is a call
of ``app.db.save``; ``self.session.execute`` is a method ``execute`` on the type of attribute
``session`` of this class. Types stay symbolic (``TypeRef``) until phase 2 can see every file.

The walk is one class in layers, each on the one below: ``resolve.Resolver`` (the state, and
what names and calls refer to), ``expressions.ExpressionWalker`` (calls, comprehensions),
``statements.FuncWalker`` (assignments, loops, ``with``, ``if``); ``extract`` drives it over a
file; ``records`` holds the facts, ``names`` the file's imports, ``shapes`` the predicates that
need the syntax alone.
"""

from __future__ import annotations

from .extract import extract, noqa_lines
from .records import Call, ClassFacts, Func, Local, Loop, ModuleFacts, Target, TypeRef

__all__ = [
    "Call",
    "ClassFacts",
    "Func",
    "Local",
    "Loop",
    "ModuleFacts",
    "Target",
    "TypeRef",
    "extract",
    "noqa_lines",
]
