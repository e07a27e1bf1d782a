"""The public API, locked: what each public module exports, under which name and module, what
the exception tree holds, which classes are final, and that every type a public method
returns can be named from a public module."""

from __future__ import annotations

import asyncio
import builtins
import collections.abc
import importlib
import inspect
import pkgutil
import re
import typing
from typing import Any

import pytest

import slipstream
import slipstream.exceptions
import slipstream.testing
import slipstream.typing

PUBLIC_MODULES = ["slipstream", "slipstream.exceptions", "slipstream.testing", "slipstream.typing"]

# A change here is a change of the public API: deliberate, and said in CHANGELOG.md.
LOCKED = {
    "slipstream.exceptions": [
        "CheckpointError", "CircuitOpen", "CommitOutcomeUnknown", "ConfigError", "FailedItems",
        "FlushFailed", "InputError", "ItemCancelled", "NotReady", "PipelineError", "PollTimeout",
        "RegistryClosed", "RemoteError", "RowsRejected", "SequentialLoadWarning", "Skip",
        "SlipstreamError", "TaskSetFull",
    ],
    "slipstream.testing": [
        "FakeClock", "VirtualClockLoop", "loop_never_blocked", "no_waits", "run", "set_testing",
    ],
}  # fmt: skip

# Classes users may subclass: exceptions (to catch or raise their own), and protocols (to
# implement). Everything else exported is @typing.final.
SUBCLASSABLE = {"Skip", "VirtualClockLoop"}


def exported(module: str) -> list[tuple[str, Any]]:
    mod = importlib.import_module(module)
    return [(name, getattr(mod, name)) for name in mod.__all__]


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_all_matches_public_names(module: str) -> None:
    """Every public name is in __all__ and every __all__ entry exists; __all__ is sorted."""
    mod = importlib.import_module(module)
    own = module == "slipstream.testing"  # a module of its own also imports helpers
    public = {
        name
        for name, value in vars(mod).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and (not own or getattr(value, "__module__", None) == module)
    }
    # isort-style, as ruff's RUF022 keeps it: CONSTANTS, then Classes, then functions
    kind = lambda name: (0 if name.isupper() else 1 if name[0].isupper() else 2, name)  # noqa: E731
    assert sorted(mod.__all__, key=kind) == mod.__all__
    assert set(mod.__all__) == public


@pytest.mark.parametrize("module", sorted(LOCKED))
def test_the_locked_modules_export_exactly_their_list(module: str) -> None:
    """slipstream.exceptions and slipstream.testing export exactly the locked names."""
    assert LOCKED[module] == importlib.import_module(module).__all__


def test_the_typing_names_are_the_same_objects_as_the_root_ones() -> None:
    """A type in both slipstream and slipstream.typing is one class, not two."""
    both = set(slipstream.__all__) & set(slipstream.typing.__all__)
    assert {"RunReport", "CacheStatistics", "Limiter"} <= both
    assert [] == [n for n in both if getattr(slipstream, n) is not getattr(slipstream.typing, n)]


def test_every_export_says_it_is_slipstreams() -> None:
    """Every exported class and function reports `slipstream` as its module (help(), reprs,
    pickles), never the private module it is written in."""
    private = [
        f"{module}.{name}: {obj.__module__}"
        for module in PUBLIC_MODULES
        for name, obj in exported(module)
        if (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__.startswith("slipstream._impl")
    ]
    assert [] == private
    assert "<class 'slipstream.Cache'>" == repr(slipstream.Cache)


def implementation_modules() -> list[str]:
    import slipstream._impl

    walk = pkgutil.walk_packages(slipstream._impl.__path__, "slipstream._impl.")
    return ["slipstream._impl", *(info.name for info in walk)]


def test_every_exception_slipstream_defines_is_in_the_public_tree() -> None:
    """Every exception class defined anywhere in the implementation derives from
    SlipstreamError and is exported by slipstream.exceptions and slipstream (found by scanning
    the implementation's modules for subclasses, not from a list)."""
    defined = set()
    for name in implementation_modules():
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # an optional extra that is not installed
            pytest.skip(f"{name} needs an optional dependency: {exc}")
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__.startswith("slipstream")
                and not value.__name__.startswith("_")
            ):
                defined.add(value)
    defined.discard(importlib.import_module("slipstream._impl.cli.common").UsageError)
    assert {slipstream.CircuitOpen, slipstream.RemoteError} <= defined
    outside = sorted(c.__name__ for c in defined if not issubclass(c, slipstream.SlipstreamError))
    assert [] == outside
    unexported = sorted(
        c.__name__
        for c in defined
        if c.__name__ not in slipstream.exceptions.__all__
        or getattr(slipstream, c.__name__, None) is not c
    )
    assert [] == unexported


def test_classes_not_meant_for_subclassing_are_final() -> None:
    """Every exported class is @typing.final except exceptions, protocols, enums and the few
    meant as bases."""
    open_classes = sorted(
        f"{module}.{name}"
        for module in PUBLIC_MODULES
        for name, obj in exported(module)
        if inspect.isclass(obj)
        and not getattr(obj, "__final__", False)
        and not issubclass(obj, BaseException)
        and not getattr(obj, "_is_protocol", False)
        and not isinstance(obj, type(slipstream.BreakerState))  # an enum with members is final
        and name not in SUBCLASSABLE
    )
    assert [] == open_classes


KNOWN_WORDS = (
    set(dir(builtins))
    | set(dir(typing))
    | set(dir(collections.abc))
    | set(dir(asyncio))
    | {"asyncio", "T", "_T", "R", "P", "K", "V", "Self", "None", "Path", "TracebackType"}
)


def test_every_type_a_public_method_returns_is_public() -> None:
    """A type named in the return annotation of an exported callable or method can be imported
    from slipstream or slipstream.typing."""
    public = set(slipstream.__all__) | set(slipstream.typing.__all__) | KNOWN_WORDS
    hidden = set()
    for name, obj in exported("slipstream") + exported("slipstream.testing"):
        targets: list[tuple[str, Any]] = [(name, obj)]
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr not in ("__aenter__", "__enter__"):
                    continue
                member = member.fget if isinstance(member, property) else member
                if callable(member):
                    targets.append((f"{name}.{attr}", member))
        for label, fn in targets:
            try:
                returned = inspect.signature(fn).return_annotation
            except (TypeError, ValueError):
                continue
            if returned is inspect.Signature.empty:
                continue
            for word in re.findall(r"[A-Za-z_][A-Za-z_0-9]*", str(returned)):
                if word not in public:
                    hidden.add(f"{label} -> {word}")
    assert set() == hidden


def test_version() -> None:
    """The version comes from the installed package's metadata."""
    assert 2 == slipstream.__version__.count(".")


def test_no_signature_shows_an_object_address() -> None:
    """A default sentinel reads as a name in signatures and help(), never `<object ...>`."""
    shown = []
    for name in slipstream.__all__:
        obj = getattr(slipstream, name)
        try:
            text = str(inspect.signature(obj))
        except (TypeError, ValueError):
            continue
        if "object at 0x" in text:
            shown.append(f"{name}{text}")
    assert [] == shown
