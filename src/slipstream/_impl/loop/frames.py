"""Which frames are the user's: the attribution a LoopWatch report rests on.

A report names the innermost frame of the user's code, not the standard library's,
site-packages', asyncio's or slipstream's, because the user can change that line and not the
library call it was inside (``os.walk``, ``Condition.wait``).
"""

from __future__ import annotations

import asyncio
import os
from types import FrameType

from ..core.frames import is_user_code

__all__ = ["ASYNCIO_DIR", "is_user_code", "lineno", "top_user_frame", "where"]

ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep


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
