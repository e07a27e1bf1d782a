"""The key of one call of a ``@cached`` function.

**What a key is made of.** ``namespace:version:name:arguments``, where ``namespace`` and
``version`` default to the cache's (``"default"`` and ``"1"``), ``arguments`` is a canonical,
type-tagged encoding of the call's arguments (a BLAKE2b fingerprint of it in SQLite and Redis),
and ``name`` is the function's stable name: ``module.qualname``, where a script run as
``python jobs.py`` counts as module ``jobs`` (the name it has when imported or run by
``slipstream run jobs.py:...``), not ``__main__``. With ``name="..."`` given, that string is the
whole namespace: the key is ``name:arguments`` and nothing else, so moving or renaming the
function keeps its entries.

What a callable binds is part of its identity: a ``functools.partial``'s arguments, a bound
method's ``self`` and a callable object itself are encoded once, at decoration, into the name
(``name@fingerprint``), so ``partial(f, 1)`` and ``partial(f, 2)`` never share entries. An object
with no stable encoding gets a token unique to the wrapper in a memory cache, and is refused
(``TypeError`` with a HINT) for SQLite and Redis, where the key must be the same in every
process.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import sys
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, cast

from ..core.keys import canonical, fingerprint
from .cache import _FAST_TYPES, Cache

__all__ = ["CallKeys", "stable_name"]


def _main_module_name() -> str:
    """The name ``__main__`` would have if it were imported: ``python -m pkg.mod`` gives
    ``pkg.mod``, ``python jobs.py`` gives ``jobs`` (as ``slipstream run jobs.py:...`` does)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and getattr(spec, "name", None) and spec.name != "__main__":
        return str(spec.name)
    path = getattr(main, "__file__", None)
    return Path(path).stem if path else "__main__"


def stable_name(fn: object) -> str:
    """``module.qualname`` of a function, method or class, with ``__main__`` resolved to the
    name its module has when imported; objects without a ``__qualname__`` (callable objects,
    mocks) are named after their class."""
    target = fn if hasattr(fn, "__qualname__") and hasattr(fn, "__module__") else type(fn)
    module = getattr(target, "__module__", None) or "?"
    if module == "__main__":
        module = _main_module_name()
    qualname = getattr(target, "__qualname__", None) or getattr(target, "__name__", "?")
    return f"{module}.{qualname}"


class _Identity:
    """A callable taken apart: the plain function whose name and signature make the key, and
    the arguments the callable binds before the caller's (a partial's, a bound ``self``)."""

    __slots__ = ("args", "function", "kwargs")

    def __init__(self, fn: Callable[..., Any]) -> None:
        args: tuple[Any, ...] = ()
        kwargs: dict[str, Any] = {}
        target: Any = fn
        for _ in range(32):  # partial(partial(obj.method, 1), 2): unwrap to the function
            if isinstance(target, functools.partial):
                args = (*target.args, *args)
                kwargs = {**target.keywords, **kwargs}
                target = target.func
            elif inspect.ismethod(target):
                args = (target.__self__, *args)
                target = target.__func__
            elif not inspect.isroutine(target) and not inspect.isclass(target):
                call = getattr(type(target), "__call__", None)  # noqa: B004  # the class's
                if call is None or not inspect.isfunction(call):
                    break  # a mock or a builtin callable: keyed by its own name, no self
                args = (target, *args)
                target = call
            else:
                break
        self.function = target
        self.args = args
        self.kwargs = kwargs


def _key_maker(
    params: list[str],
    key: Callable[..., Any] | None,
    excluded: frozenset[str],
) -> Callable[[tuple[Any, ...], dict[str, Any]], Hashable]:
    """Build the function that turns call arguments into a hashable key (``params``: the
    names of the positional parameters a call fills, in order)."""
    skip = frozenset(i for i, name in enumerate(params) if name in excluded)

    if key is not None:

        def custom(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
            return cast(Hashable, canonical(key(*args, **kwargs), "key(...)"))

        return custom

    def make(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
        if not kwargs and not skip:
            for a in args:
                if type(a) not in _FAST_TYPES:
                    break
            else:
                return args  # the common case: no allocation, no encoding
        parts: list[Any] = []
        for i, a in enumerate(args):
            if i in skip:
                continue
            name = params[i] if i < len(params) else f"args[{i}]"
            parts.append(a if type(a) in _FAST_TYPES else canonical(a, name))
        for name in sorted(kwargs):
            if name in excluded:
                continue
            value = kwargs[name]
            parts.append((name, value if type(value) in _FAST_TYPES else canonical(value, name)))
        return ("k", *parts)

    return make


_tokens = itertools.count(1)


class CallKeys:
    """What ``@cached`` builds once per function to key its calls: the name and what the
    callable binds (a prefix), and the maker of the arguments' part."""

    def __init__(
        self,
        fn: Callable[..., Any],
        store: Cache,
        *,
        key: Callable[..., Any] | None,
        exclude: tuple[str, ...],
        name: str | None,
        namespace: str | None,
        version: str | int | None,
    ) -> None:
        identity = _Identity(fn)
        excluded = frozenset(exclude)
        try:
            params = list(inspect.signature(identity.function).parameters)
        except (TypeError, ValueError):
            params = []
        unknown = excluded - set(params)
        if unknown:
            raise ValueError(
                f"'exclude' names no parameter of {stable_name(identity.function)}: "
                f"{sorted(unknown)}"
            )
        n = len(identity.args)
        self.make_key = _key_maker(params[n:], key, excluded)
        ns = namespace or store.namespace
        ver = str(version) if version is not None else store.version
        base = name if name is not None else f"{ns}:{ver}:{stable_name(identity.function)}"
        bound = self._bound(identity, params[:n], excluded, external=store._shared)
        if bound:
            base = f"{base}@{bound}"
        self.prefix: tuple[str, ...] = (base,)
        self.text_prefix = base + ":"
        self.external = store._shared
        self.ns = ns

    @staticmethod
    def _bound(
        identity: _Identity, names: list[str], excluded: frozenset[str], *, external: bool
    ) -> str:
        """A fingerprint of what the callable binds (a partial's arguments, a bound method's
        ``self``, a callable object), computed once: part of every key of this function."""
        items: list[Any] = [
            (names[i] if i < len(names) else f"args[{i}]", value)
            for i, value in enumerate(identity.args)
            if i >= len(names) or names[i] not in excluded
        ]
        items += [(k, v) for k, v in sorted(identity.kwargs.items()) if k not in excluded]
        if not items:
            return ""
        try:
            return fingerprint(items, "the bound arguments")[:16]
        except TypeError as exc:
            if external:
                raise TypeError(
                    f"{stable_name(identity.function)} binds an argument with no stable "
                    f"encoding ({str(exc).partition(chr(10))[0]}); a persistent cache needs a "
                    "key that is the same in every process"
                    '\nHINT: @ss.cached(cache, name="...", exclude=["self"]), or give the '
                    "class a __slipstream_key__() method"
                ) from None
            # in memory the entries live as long as this process: a token unique to this
            # wrapper (never an id(), which is reused once the object is collected)
            return f"#{next(_tokens)}"

    def full_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
        argkey = self.make_key(args, kwargs)
        if self.external:
            return self.text_prefix + fingerprint(argkey, "arguments")
        return (self.prefix, argkey)
