"""`slipstream demo`: the annotation demo, run from a source checkout's `examples/`."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .common import UsageError

__all__ = ["demo"]


def _demo_script() -> Path:
    """The demo's ``run.py``: under ``$SLIPSTREAM_EXAMPLES`` if set, else in the ``examples/`` of
    the current directory or the nearest parent that has one (a source checkout; the demo is
    not installed with the package, so the installed CLI never reaches into its own files)."""
    tail = Path("annotation") / "run.py"
    configured = os.environ.get("SLIPSTREAM_EXAMPLES")
    if configured:
        script = Path(configured) / tail
        if script.is_file():
            return script
        raise UsageError(f"SLIPSTREAM_EXAMPLES={configured!r} has no {tail}")
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        script = folder / "examples" / tail
        if script.is_file():
            return script
    raise UsageError(
        "the demo runs from a source checkout (examples/annotation/ is not installed with the "
        "package): git clone the repository and run 'make demo' inside it, or point "
        "SLIPSTREAM_EXAMPLES at its examples/ folder"
    )


def demo(argv: Sequence[str]) -> int:
    script = _demo_script()
    spec = importlib.util.spec_from_file_location("slipstream_demo_run", script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return int(module.main(list(argv), prog="slipstream demo"))
