"""How values become bytes for a store shared by processes (SQLite, Redis).

JSON by default, msgpack if installed and asked for, pickle only when asked for by name,
because a shared cache must not be a way to run code. ``SerializedStore`` applies one to a
``Store[bytes]``: values are encoded before the backend is called and decoded after it
answered, outside the backend's guard, so a value that cannot be encoded is the caller's
``TypeError`` (``Cache.set`` raises it; a loader's result is returned uncached), never a
backend outage.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import Any, Protocol

from ..core.checks import check_choice
from .store import Layer, Store, Target, Terms

__all__ = ["SerializedStore", "Serializer", "make_serializer"]


class Serializer(Protocol):
    """Turns a value into bytes and back; ``dumps`` raises ``TypeError`` for a value it
    cannot hold (with the reason and, where one helps, a HINT)."""

    @property
    def name(self) -> str:
        """The name given to ``Cache(serializer=...)``; logs name it."""
        ...

    def dumps(self, value: Any) -> bytes:
        """The bytes of ``value``; ``TypeError`` if it cannot be encoded."""
        ...

    def loads(self, data: bytes) -> Any:
        """The value ``dumps`` encoded as ``data``."""
        ...


class _Json:
    name = "json"

    def dumps(self, value: Any) -> bytes:
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"cannot serialise a {type(value).__qualname__} as JSON: {exc}"
                "\nHINT: return JSON-friendly data, or Cache(serializer='msgpack' or 'pickle')"
            ) from None

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


class _Msgpack:
    name = "msgpack"

    def __init__(self) -> None:
        try:
            import msgpack  # type: ignore[import-untyped]  # no stubs published
        except ImportError:
            raise ImportError(
                "serializer='msgpack' needs the msgpack package\nHINT: pip install msgpack"
            ) from None
        self._msgpack: Any = msgpack

    def dumps(self, value: Any) -> bytes:
        try:
            return bytes(self._msgpack.packb(value, use_bin_type=True))
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(
                f"cannot serialise a {type(value).__qualname__} as msgpack: {exc}"
            ) from None

    def loads(self, data: bytes) -> Any:
        return self._msgpack.unpackb(data, raw=False)


class _Pickle:
    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        import pickle

        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except (TypeError, AttributeError, pickle.PicklingError) as exc:
            raise TypeError(f"cannot pickle a {type(value).__qualname__}: {exc}") from None

    def loads(self, data: bytes) -> Any:
        import pickle

        return pickle.loads(data)  # only when the user asked for pickle by name


def make_serializer(name: str) -> Serializer:
    """The serializer called ``name``: "json", "msgpack" or "pickle" (ValueError otherwise)."""
    if name == "json":
        return _Json()
    if name == "msgpack":
        return _Msgpack()
    if name == "pickle":
        return _Pickle()
    check_choice("serializer", name, ("json", "msgpack", "pickle"))
    raise AssertionError("unreachable")  # pragma: no cover


class SerializedStore(Layer[bytes]):
    """A ``Store[Any]`` over a ``Store[bytes]``: values encoded on the way in, decoded on the
    way out."""

    __slots__ = ("serializer",)

    def __init__(self, inner: Store[bytes], serializer: Serializer) -> None:
        super().__init__(inner)
        self.serializer = serializer

    def _decode(self, found: tuple[int, bytes] | None) -> tuple[int, Any] | None:
        if found is None:
            return None
        state, data = found
        return state, self.serializer.loads(data)

    async def lookup(self, key: Hashable) -> tuple[int, Any] | None:
        return self._decode(await self.inner.lookup(key))

    def lookup_sync(self, key: Hashable) -> tuple[int, Any] | None:
        return self._decode(self.inner.lookup_sync(key))

    async def store(self, key: Hashable, value: Any, terms: Terms) -> None:
        data = self.serializer.dumps(value)  # TypeError for the caller, before any I/O
        await self.inner.store(key, data, terms)

    def store_sync(self, key: Hashable, value: Any, terms: Terms) -> None:
        data = self.serializer.dumps(value)
        self.inner.store_sync(key, data, terms)

    async def invalidate(self, target: Target, value: Hashable) -> int:
        return await self.inner.invalidate(target, value)

    def invalidate_sync(self, target: Target, value: Hashable) -> int:
        return self.inner.invalidate_sync(target, value)

    async def clear(self) -> None:
        await self.inner.clear()

    def sweep(self) -> int:
        return self.inner.sweep()
