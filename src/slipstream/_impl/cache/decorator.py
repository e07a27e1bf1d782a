"""``@ss.cached``: cache a sync or async function by a canonical key of its arguments.

The decorator's hot path is inlined here: plain ``str``/``int``/``bytes``/``None`` arguments are
their own key, one dict lookup and one clock read find a fresh in-memory entry, and nothing is
locked. Everything else (encoding other arguments, misses, single flight, stores) is
``Cache``'s.

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
from collections.abc import Awaitable, Callable, Hashable, Iterable
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from ..core import clock as _clock
from ..core.callables import kind_of
from ..core.checks import check_callable
from ..core.keys import canonical, fingerprint
from .cache import _FAST_TYPES, MISSING, Cache, _check_ttl

__all__ = ["CachedFunction", "cached", "stable_name"]

P = ParamSpec("P")
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class CachedFunction(Protocol[P, T_co]):
    """What ``@ss.cached`` returns: the function, plus its cache and per-call invalidation."""

    cache: Cache

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T_co: ...

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> Hashable:
        """The key under which this call's result is stored."""
        ...

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> int:
        """Forget this call's entry; returns how many entries were removed (0 or 1)."""
        ...

    def invalidate_sync(self, *args: P.args, **kwargs: P.kwargs) -> int:
        """``invalidate`` for sync code (memory and SQLite caches)."""
        ...


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


class _Wrapped:
    """The pieces ``decorate`` builds once per function; the wrappers close over them."""

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
        bound = self._bound(identity, params[:n], excluded, external=store.memory is None)
        if bound:
            base = f"{base}@{bound}"
        self.prefix: tuple[str, ...] = (base,)
        self.text_prefix = base + ":"
        self.external = store.memory is None
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


def cached(
    cache: Cache | None = None,
    *,
    ttl_s: float | None = MISSING,
    max_entries: int = 1024,
    name: str | None = None,
    namespace: str | None = None,
    version: str | int | None = None,
    key: Callable[..., Any] | None = None,
    exclude: Iterable[str] = (),
    tags: Iterable[str] | Callable[..., Iterable[str]] = (),
) -> Callable[[Callable[P, T]], CachedFunction[P, T]]:
    """Cache a sync or async function (or method, ``partial``, ``partialmethod``, callable
    object) by its arguments.

    Args:
        cache: the ``Cache`` to use; default a private memory cache of ``max_entries``.
        ttl_s: freshness of entries (default: the cache's; 300 s for a private cache).
        name: the stored identity of this function's entries: when given, the key is
            ``name`` plus the arguments and nothing else (no module, qualname, namespace or
            version), so the entries survive moving or renaming the function. Give one for a
            persistent (SQLite, Redis) cache shared by several programs.
        namespace: the namespace of this function's entries (default: the cache's).
        version: part of the key; bump it when the function's output changes meaning.
        key: ``key(*args, **kwargs)`` returning what identifies a call (instead of all args).
        exclude: parameter names left out of the key (a DB session, a client, ``self``).
        tags: tags of every entry, or ``tags(*args, **kwargs)`` returning them.

    The key is ``namespace:version:module.qualname:arguments`` (see the module doc; a script's
    ``__main__`` is named after its file), or ``name:arguments``; an argument with no stable
    encoding raises ``TypeError`` naming it. The decorated function has ``.cache``,
    ``.cache_key(*args, **kwargs)``, ``await .invalidate(*args, **kwargs)`` and
    ``.invalidate_sync(*args, **kwargs)``.

    Raises:
        TypeError: a bad argument, ``name`` together with ``version``, or a generator function
            (its call returns before any of its body runs: there is no result to keep).
    """
    exclude = tuple(exclude)
    if cache is not None and not isinstance(cache, Cache):
        raise TypeError(
            f"'cache' must be a slipstream.Cache, got {type(cache).__name__}"
            "\nHINT: use @ss.cached() or @ss.cached(my_cache), not a bare @ss.cached"
        )
    if ttl_s is not MISSING:
        _check_ttl("ttl_s", ttl_s)
    check_callable("key", key, allow_none=True)
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"'name' must be a non-empty str or None, got {name!r}")
    if name is not None and version is not None:
        raise TypeError(
            "give 'name' or 'version', not both: a name is the whole namespace of the entries"
            f'\nHINT: @ss.cached(name="{name}-v{version}")'
        )
    store = (
        cache
        if cache is not None
        else Cache(ttl_s=300.0 if ttl_s is MISSING else ttl_s, max_entries=max_entries)
    )
    ttl = store.ttl_s if ttl_s is MISSING else ttl_s
    static_tags = tuple(tags) if not callable(tags) else ()
    tag_fn = tags if callable(tags) else None

    def decorate(fn: Callable[P, T]) -> CachedFunction[P, T]:
        if isinstance(fn, functools.partialmethod):
            # cache the function itself; the partialmethod binds self and its arguments
            inner: Any = decorate(fn.func)
            return cast(Any, functools.partialmethod(inner, *fn.args, **fn.keywords))
        if not callable(fn):
            raise TypeError(f"'fn' must be callable, got {type(fn).__name__}")
        kind = kind_of(fn)
        if kind in ("generator", "async_generator"):
            raise TypeError(
                f"@ss.cached cannot cache the {kind.replace('_', ' ')} function "
                f"{stable_name(fn)!r}: its call returns an iterator, not a result"
                "\nHINT: cache a function that returns a list: "
                "@ss.cached() async def rows(...): return [r async for r in gen(...)]"
            )
        parts = _Wrapped(
            fn,
            store,
            key=key,
            exclude=exclude,
            name=name,
            namespace=namespace,
            version=version,
        )
        ns, prefix, full_key = parts.ns, parts.prefix, parts.full_key

        def tags_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, ...]:
            return tuple(tag_fn(*args, **kwargs)) if tag_fn is not None else static_tags

        counters = store._counters
        data = store.memory.data if store.memory is not None else None
        fast = data is not None and key is None and not exclude

        def lookup(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Hashable, Any]:
            """The call's key and its fresh in-memory value (MISSING if none): the hot path.
            (try/except, not contextlib.suppress, below: a context manager costs ~1 us.)"""
            if fast and not kwargs:
                for a in args:
                    if type(a) not in _FAST_TYPES:
                        break
                else:
                    full: Hashable = (prefix, args)  # plain arguments are their own key
                    item = data.get(full)  # type: ignore[union-attr]  # fast implies memory
                    if item is not None and _clock.clock() < item.expires_at:
                        try:  # noqa: SIM105
                            data.move_to_end(full)  # type: ignore[union-attr]
                        except KeyError:  # evicted by another thread just now: still a hit
                            pass
                        counters.hits += 1
                        return full, item.value
                    return full, MISSING
            full = full_key(args, kwargs)
            if data is not None:
                item = data.get(full)
                if item is not None and _clock.clock() < item.expires_at:
                    try:  # noqa: SIM105
                        data.move_to_end(full)
                    except KeyError:
                        pass
                    counters.hits += 1
                    return full, item.value
            return full, MISSING

        if kind == "async":
            afn = cast(Callable[..., Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                full, value = lookup(args, kwargs)
                if value is not MISSING:
                    return value
                return await store._get_or_load(
                    full, lambda: afn(*args, **kwargs), ttl, ns, tags_of(args, kwargs)
                )

            wrapper: Any = async_wrapper
        else:

            @functools.wraps(fn)
            def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                full, value = lookup(args, kwargs)
                if value is not MISSING:
                    return value
                return store._get_or_load_sync(
                    full, lambda: fn(*args, **kwargs), ttl, ns, tags_of(args, kwargs)
                )

            wrapper = sync_wrapper

        async def invalidate(*args: P.args, **kwargs: P.kwargs) -> int:
            return await store._invalidate_entry(full_key(args, kwargs))

        def invalidate_sync(*args: P.args, **kwargs: P.kwargs) -> int:
            return store._invalidate_entry_sync(full_key(args, kwargs))

        wrapper.cache = store
        wrapper.cache_key = lambda *a, **kw: full_key(a, kw)
        wrapper.invalidate = invalidate
        wrapper.invalidate_sync = invalidate_sync
        return cast(CachedFunction[P, T], wrapper)

    return decorate
