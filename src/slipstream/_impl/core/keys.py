"""Stable keys: a canonical, type-tagged encoding of values, and its fingerprint.

Used by the registry (settings -> client) and the cache (arguments -> entry). The encoding is a
nested tuple of builtins that is equal for equal values, different for different types that
compare equal (``1``, ``1.0`` and ``True`` get three keys), independent of dict and set order,
and identical in every process (``fingerprint`` hashes its ``repr`` with BLAKE2b, never
``hash()``, which is salted per process, and never ``id()``, which is reused after garbage
collection: seed 000's ``id(settings)`` bug).

Supported: None, bool, int, float, str, bytes, tuple, list, dict / Mapping, set / frozenset,
dataclasses, pydantic models, enums, datetime / date / time / timedelta, Decimal, UUID, paths,
objects with ``__slipstream_key__()``, and objects whose class defines its own ``__repr__``.
Anything else (above all an object whose only text is ``<Foo object at 0x...>``) raises
``TypeError`` naming the argument.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import hashlib
import pathlib
import uuid
from collections.abc import Mapping
from typing import Any

__all__ = ["canonical", "fingerprint"]

_OBJECT_REPR = object.__repr__
_PLAIN = (str, int, bytes, type(None))  # exact types that are their own canonical form
_TEXTUAL = (
    datetime.datetime,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    decimal.Decimal,
    uuid.UUID,
    pathlib.PurePath,
)


def _qualname(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def canonical(value: Any, name: str = "value") -> Any:
    """The canonical, hashable, type-tagged form of ``value``.

    Raises:
        TypeError: ``value`` (or something inside it) has no stable encoding; the message names
            ``name`` and the path to the offending part.
    """
    cls = type(value)
    if cls in _PLAIN:
        return value
    if cls is bool:
        return ("b", value)
    if cls is float:
        return ("f", repr(value))
    if isinstance(value, enum.Enum):
        return ("e", _qualname(value), canonical(value.value, f"{name}.value"))
    if isinstance(value, str | int | bytes):  # subclasses of builtins (not enums)
        base = next(b for b in (str, int, bytes) if isinstance(value, b))
        return ("x", _qualname(value), base.__name__, str(value))
    if isinstance(value, tuple | list):
        tag = "t" if isinstance(value, tuple) else "l"
        return (tag, *(canonical(v, f"{name}[{i}]") for i, v in enumerate(value)))
    if isinstance(value, Mapping):
        items = [
            (canonical(k, f"{name} key"), canonical(v, f"{name}[{k!r}]")) for k, v in value.items()
        ]
        items.sort(key=repr)
        return ("d", *items)
    if isinstance(value, set | frozenset):
        return ("s", *sorted((canonical(v, f"{name} item") for v in value), key=repr))
    key_method = getattr(value, "__slipstream_key__", None)
    if key_method is not None and not isinstance(value, type):
        return ("k", _qualname(value), canonical(key_method(), f"{name}.__slipstream_key__()"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            "dc",
            _qualname(value),
            *(
                (f.name, canonical(getattr(value, f.name), f"{name}.{f.name}"))
                for f in dataclasses.fields(value)
            ),
        )
    dump = getattr(value, "model_dump", None)
    if dump is not None and hasattr(cls, "model_fields"):  # a pydantic v2 model
        return ("pd", _qualname(value), canonical(dump(mode="json"), name))
    if isinstance(value, _TEXTUAL):
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
        return ("x", _qualname(value), text)
    if getattr(cls, "__repr__", None) is not _OBJECT_REPR:
        text = repr(value)
        if " at 0x" not in text:
            return ("r", _qualname(value), text)
    raise TypeError(
        f"cannot make a stable key from {name!r} of type {cls.__qualname__}: its only text is "
        "an address, which changes every run"
        "\nHINT: leave it out (exclude=[...] or key=...), or give the class a "
        "__slipstream_key__() method returning the fields that matter"
    )


def fingerprint(value: Any, name: str = "value") -> str:
    """A short hex digest of ``canonical(value)``, identical in every process and run."""
    return hashlib.blake2b(repr(canonical(value, name)).encode(), digest_size=16).hexdigest()
