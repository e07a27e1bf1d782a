"""Which frames are the user's: the attribution a LoopWatch report rests on.

A report names the innermost frame of the user's code, not the standard library's,
site-packages', asyncio's or slipstream's, because the user can change that line and not the
library call it was inside (``os.walk``, ``Condition.wait``).
"""

from __future__ import annotations

import asyncio
import os
import site
import sysconfig
from types import FrameType

__all__ = ["ASYNCIO_DIR", "is_user_code", "lineno", "top_user_frame", "where"]

ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep
# The slipstream package (up from slipstream/_impl/loop/frames.py), as imported (the loop below
# adds its resolved forms): its public modules (slipstream.testing) are library code too.
_SLIPSTREAM_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _library_dirs() -> tuple[str, ...]:
    """Where code that is not the user's lives: the standard library, site-packages, slipstream."""
    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    dirs.update(getattr(site, "getsitepackages", list)())
    if getattr(site, "ENABLE_USER_SITE", False):
        dirs.add(site.getusersitepackages())
    dirs.add(_SLIPSTREAM_DIR)
    found = set()
    for d in dirs:
        for form in (d, os.path.abspath(d), os.path.realpath(d)):
            found.add(form.rstrip(os.sep) + os.sep)
    return tuple(sorted(found))


_LIBRARY_PREFIXES = ("<frozen ", *_library_dirs())  # <frozen os>: the standard library
_PACKAGE_DIRS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
_is_user_cache: dict[str, bool] = {}


def is_user_code(filename: str) -> bool:
    """Is ``filename`` the user's code (not the standard library, an installed package, asyncio
    or slipstream)? Frozen modules (``<frozen os>``) are the standard library's."""
    user = _is_user_cache.get(filename)
    if user is None:
        user = not (
            filename.startswith(_LIBRARY_PREFIXES) or any(p in filename for p in _PACKAGE_DIRS)
        )
        if len(_is_user_cache) < 10_000:  # bounded: a process may exec many generated files
            _is_user_cache[filename] = user
    return user


def where(frame: FrameType, line: int) -> str:
    """``module.qualname at file:line``, the form a report's ``inside`` takes."""
    module = frame.f_globals.get("__name__", "?")
    return f"{module}.{frame.f_code.co_qualname} at {frame.f_code.co_filename}:{line}"


def lineno(frame: FrameType) -> int:
    """The frame's current line; an instruction with no line of its own (``f_lineno`` is None,
    as while a generator starts) gets the nearest line before it, else the function's first."""
    line: int | None = frame.f_lineno
    if line is None:
        lasti = frame.f_lasti
        for start, _end, number in frame.f_code.co_lines():
            if start > lasti:
                break
            if number is not None:
                line = number
    return frame.f_code.co_firstlineno if line is None else line


def top_user_frame(frame: FrameType) -> FrameType:
    """The innermost frame of the user's code in a thread's stack (else its innermost frame)."""
    f: FrameType | None = frame
    while f is not None:
        if is_user_code(f.f_code.co_filename):
            return f
        f = f.f_back
    return frame
