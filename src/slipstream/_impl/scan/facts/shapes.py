"""What a piece of syntax is, judged from the syntax alone (no name is resolved): a dotted name,
an empty dict, a key that comes from data, a loop over a small literal or a retry counter, a
loop whose iterations are independent, a test that holds once per batch."""

from __future__ import annotations

import ast
import re

__all__ = [
    "batch_guard",
    "dotted_parts",
    "independent_iterations",
    "is_call",
    "is_data_key",
    "is_empty_dict",
    "is_none",
    "leaves_loop",
    "names_in",
    "numeric_only",
    "procfs",
    "short_text",
    "small_or_retry",
]


def dotted_parts(node: ast.expr) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        parts.reverse()
        return parts
    return None


def is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def is_call(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Await):
        value = value.value
    return isinstance(value, ast.Call)


def short_text(func: ast.expr) -> str:
    """The called expression as text, cheaply (``session.commit``, ``get_db().execute``)."""
    parts: list[str] = []
    node = func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif isinstance(node, ast.Call):
        parts.append(short_text(node.func) + "()")
    elif isinstance(node, ast.Subscript):
        parts.append(short_text(node.value) + "[...]")
    else:
        parts.append("(...)")
    text = ".".join(reversed(parts))
    return text if len(text) <= 60 else text[:57] + "..."


def procfs(arg: ast.expr) -> bool:
    if isinstance(arg, ast.JoinedStr) and arg.values:
        arg = arg.values[0]
    return (
        isinstance(arg, ast.Constant)
        and isinstance(arg.value, str)
        and arg.value.startswith(("/proc/", "/sys/"))
    )


def numeric_only(node: ast.AST, constants: set[str]) -> bool:
    """Does this expression pass ``AI_NUMERICHOST`` (getaddrinfo then never does DNS)?"""
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute) and n.attr == "AI_NUMERICHOST":
            return True
        if isinstance(n, ast.Name) and (n.id == "AI_NUMERICHOST" or n.id in constants):
            return True
    return False


def names_in(node: ast.AST) -> set[str]:
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


# Keys that come from the program, not its data (a type, a function, a module or method name,
# a URL scheme): a dict keyed by them is bounded by the code and is not a leak.
_CODE_KEY = re.compile(
    r"^_?(cls|klass|class_?|type_?|typ|tp|t|obj_type|method(_?name)?|meth|func|fn|f|"
    r"callable|modname|module(_?name)?|mod|scheme|protocol|attr(_?name)?|field(_?name)?|"
    r"kind|dialect|backend|driver|op|opname|code)$",
    re.I,
)


def is_data_key(key: ast.expr) -> bool:
    """Can this subscript key take an unbounded number of values (ids, URLs, user input)?"""
    if isinstance(key, ast.Constant):
        return False
    if isinstance(key, ast.Name):
        return not _CODE_KEY.match(key.id)
    if isinstance(key, ast.Attribute):
        return key.attr not in ("__name__", "__qualname__", "__class__", "__module__")
    if isinstance(key, ast.Call):
        d = dotted_parts(key.func)
        return not (d and d[-1] in ("type", "getattr"))
    if isinstance(key, ast.Tuple):
        return any(is_data_key(e) for e in key.elts)
    return True


def is_empty_dict(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Dict):
        return not value.keys
    if isinstance(value, ast.Call):
        d = dotted_parts(value.func)
        if not d:
            return False
        if not value.args and not value.keywords and d[-1] in ("dict", "OrderedDict"):
            return True
        return d[-1] == "defaultdict"
    return False


# -- loops --------------------------------------------------------------------------------------


_RETRY_NAME = re.compile(r"attempt|retr|tries|^try", re.I)
_SMALL = 10


def small_or_retry(it: ast.expr, target: ast.expr) -> bool:
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


def independent_iterations(loop: ast.For | ast.AsyncFor) -> bool:
    """No break/return, no throttle, not iterating as_completed or a queue, and no value carried
    from one iteration to the next (a name read before it is assigned in the body)."""
    it = loop.iter
    if isinstance(it, ast.Call):
        d = dotted_parts(it.func)
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
                d = dotted_parts(n.value.func)
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


def leaves_loop(body: list[ast.stmt]) -> bool:
    """Does this block end by leaving the loop (return, raise, break)?"""
    return bool(body) and isinstance(body[-1], (ast.Return, ast.Raise, ast.Break))


def batch_guard(test: ast.expr) -> bool:
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
