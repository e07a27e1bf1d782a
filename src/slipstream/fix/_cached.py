"""``@ss.cached``: cache a sync or async function by a canonical key of its arguments.

The decorator's hot path is inlined here: plain ``str``/``int``/``bytes``/``None`` arguments are
their own key, one dict lookup and one clock read find a fresh in-memory entry, and nothing is
locked. Everything else (encoding other arguments, misses, single flight, stores) is
``Cache``'s.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Hashable, Iterable
from typing import Any, ParamSpec, TypeVar, cast

from .. import _settings
from ._cache import _FAST_TYPES, MISSING, Cache, _check_ttl
from ._keys import canonical, fingerprint

__all__ = ["cached"]

P = ParamSpec("P")
T = TypeVar("T")


def _key_maker(
    fn: Callable[..., Any],
    key: Callable[..., Any] | None,
    exclude: Iterable[str],
) -> Callable[[tuple[Any, ...], dict[str, Any]], Hashable]:
    """Build the function that turns call arguments into a hashable key."""
    excluded = frozenset(exclude)
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = []
    unknown = excluded - set(params)
    if unknown:
        raise ValueError(f"'exclude' names no parameter of {fn.__qualname__}: {sorted(unknown)}")
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


def cached(
    cache: Cache | None = None,
    *,
    ttl_s: float | None = MISSING,
    max_entries: int = 1024,
    namespace: str | None = None,
    version: str | int | None = None,
    key: Callable[..., Any] | None = None,
    exclude: Iterable[str] = (),
    tags: Iterable[str] | Callable[..., Iterable[str]] = (),
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Cache a sync or async function (or method) by its arguments.

    Args:
        cache: the ``Cache`` to use; default a private memory cache of ``max_entries``.
        ttl_s: freshness of entries (default: the cache's; 300 s for a private cache).
        namespace: the namespace of this function's entries (default: the cache's).
        version: part of the key; bump it when the function's output changes meaning.
        key: ``key(*args, **kwargs)`` returning what identifies a call (instead of all args).
        exclude: parameter names left out of the key (a DB session, a client, ``self``).
        tags: tags of every entry, or ``tags(*args, **kwargs)`` returning them.

    The key is the function's qualified name, the version and a canonical encoding of the
    arguments; an argument with no stable encoding raises ``TypeError`` naming it.
    ``fn.cache`` is the cache; ``fn.cache_key(*args, **kwargs)`` the key of a call.
    """
    exclude = tuple(exclude)
    if cache is not None and not isinstance(cache, Cache):
        raise TypeError(
            f"'cache' must be a slipstream.Cache, got {type(cache).__name__}"
            "\nHINT: use @ss.cached() or @ss.cached(my_cache), not a bare @ss.cached"
        )
    if ttl_s is not MISSING:
        _check_ttl("ttl_s", ttl_s)
    if key is not None and not callable(key):
        raise TypeError(f"'key' must be callable, got {type(key).__name__}")
    store = (
        cache
        if cache is not None
        else Cache(ttl_s=300.0 if ttl_s is MISSING else ttl_s, max_entries=max_entries)
    )
    ttl = store.ttl_s if ttl_s is MISSING else ttl_s
    ns = namespace or store.namespace
    static_tags = tuple(tags) if not callable(tags) else ()
    tag_fn = tags if callable(tags) else None

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        if not callable(fn):
            raise TypeError(f"'fn' must be callable, got {type(fn).__name__}")
        make_key = _key_maker(fn, key, exclude)
        qualname = f"{fn.__module__}.{fn.__qualname__}"
        ver = str(version) if version is not None else store.version
        prefix = (ns, ver, qualname)
        memory = store.memory
        external = memory is None

        def full_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
            argkey = make_key(args, kwargs)
            if external:
                return f"{ns}:{ver}:{qualname}:{fingerprint(argkey, 'arguments')}"
            return (prefix, argkey)

        def tags_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, ...]:
            return tuple(tag_fn(*args, **kwargs)) if tag_fn is not None else static_tags

        counters = store._counters
        data = memory.data if memory is not None else None
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
                    if item is not None and _settings.clock() < item.expires_at:
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
                if item is not None and _settings.clock() < item.expires_at:
                    try:  # noqa: SIM105
                        data.move_to_end(full)
                    except KeyError:
                        pass
                    counters.hits += 1
                    return full, item.value
            return full, MISSING

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                full, value = lookup(args, kwargs)
                if value is not MISSING:
                    return value
                return await store._get_or_load(
                    full, lambda: fn(*args, **kwargs), ttl, ns, tags_of(args, kwargs)
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
        wrapper.cache = store
        wrapper.cache_key = lambda *a, **kw: full_key(a, kw)
        return cast(Callable[P, T], wrapper)

    return decorate
