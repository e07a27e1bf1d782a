"""Which source files are the user's: the attribution LoopWatch reports and the runtime
detectors rest on.

A report names the innermost frame of the user's code, not the standard library's,
site-packages' or slipstream's, because the user can change that line and not the library
call it was inside.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from types import FrameType

__all__ = ["is_user_code", "is_user_frame"]

# The slipstream package (up from slipstream/_impl/core/frames.py), as imported (the loop below
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


def is_user_frame(frame: FrameType) -> bool:
    """Is ``frame`` running the user's code? As :func:`is_user_code` of its file, except for
    code compiled from a string (``<string>``, ``<makefunc ...>``: SQLAlchemy's and attrs'
    generated methods), which belongs to the module whose globals it runs in."""
    filename = frame.f_code.co_filename
    if filename.startswith("<") and not filename.startswith("<frozen "):
        module = sys.modules.get(frame.f_globals.get("__name__", ""))
        module_file = getattr(module, "__file__", None)
        if isinstance(module_file, str):
            return is_user_code(module_file)
    return is_user_code(filename)
