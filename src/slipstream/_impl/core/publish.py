"""Give exported names their public module, so ``help()``, reprs, tracebacks and pickles say
``slipstream.Cache`` rather than the private module the class is written in."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["publish"]


def publish(namespace: Mapping[str, Any], names: Iterable[str], module: str) -> None:
    """Set ``__module__`` to ``module`` on each class and function of ``names`` in
    ``namespace`` that still names a private module (a name exported from two public modules
    keeps the first one's). Pickles stay valid: they resolve the name where it is exported."""
    for name in names:
        obj = namespace[name]
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__.startswith(
            "slipstream._impl"
        ):
            obj.__module__ = module
