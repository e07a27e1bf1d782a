"""``@ss.cached``: cache a sync or async function by a canonical key of its arguments.

The decorator's hot path is inlined here: plain ``str``/``int``/``bytes``/``None`` arguments are
their own key, one dict lookup and one clock read find a fresh in-memory entry, and nothing is
locked. What a key is made of is callkeys.py's; everything else (encoding other arguments,
misses, single flight, stores) is ``Cache``'s.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from ..core import clock as _clock
from ..core.callables import kind_of
from ..core.checks import check_callable
from .cache import _FAST_TYPES, MISSING, Cache, _check_ttl
from .callkeys import CallKeys
from .callkeys import stable_name as stable_name
from .store import Terms

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
        parts = CallKeys(
            fn,
            store,
            key=key,
            exclude=exclude,
            name=name,
            namespace=namespace,
            version=version,
        )
        ns, prefix, full_key = parts.ns, parts.prefix, parts.full_key

        static_terms = store._terms(ttl, ns, static_tags)  # built once: the common case

        def terms_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Terms:
            if tag_fn is None:
                return static_terms
            return store._terms(ttl, ns, tuple(tag_fn(*args, **kwargs)))

        counters = store._counters
        data = store._hot  # the memory store's dict, or None: see Cache.__init__
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
                    full, terms_of(args, kwargs), lambda: afn(*args, **kwargs)
                )

            wrapper: Any = async_wrapper
        else:

            @functools.wraps(fn)
            def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                full, value = lookup(args, kwargs)
                if value is not MISSING:
                    return value
                return store._get_or_load_sync(
                    full, terms_of(args, kwargs), lambda: fn(*args, **kwargs)
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
