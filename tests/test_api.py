"""The public API: __all__ is sorted and names exactly what the packages export."""

from __future__ import annotations

import importlib

import pytest

import slipstream


@pytest.mark.parametrize(
    "module",
    [
        "slipstream",
        "slipstream.exceptions",
        "slipstream.testing",
    ],
)
def test_all_matches_public_names(module: str) -> None:
    """Every public name is in __all__ and every __all__ entry exists; __all__ is sorted."""
    mod = importlib.import_module(module)
    public = {
        name
        for name, value in vars(mod).items()
        if not name.startswith("_")
        and not isinstance(value, type(importlib))
        # a module of its own (not a re-export module) also imports helpers it does not export
        and (module != "slipstream.testing" or getattr(value, "__module__", None) == module)
    }
    # isort-style, as ruff's RUF022 keeps it: CONSTANTS, then Classes, then functions
    kind = lambda name: (0 if name.isupper() else 1 if name[0].isupper() else 2, name)  # noqa: E731
    assert sorted(mod.__all__, key=kind) == mod.__all__
    assert set(mod.__all__) == public


def test_exceptions_share_one_root() -> None:
    """Every exception slipstream raises derives from SlipstreamError."""
    for name in slipstream.exceptions.__all__:
        assert issubclass(getattr(slipstream, name), slipstream.SlipstreamError)


def test_version() -> None:
    """The version is exported."""
    assert 2 == slipstream.__version__.count(".")


def test_no_signature_shows_an_object_address() -> None:
    """A default sentinel reads as a name in signatures and help(), never `<object ...>`."""
    import inspect

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
