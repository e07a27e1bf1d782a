"""The argument checks every public constructor uses, so every bad argument names its parameter.

One message format for the whole API::

    TypeError:  'max_wait_s' must be a number of seconds, got str 'x'
    ValueError: 'max_wait_s' must be > 0, got -1

A wrong *type* is a ``TypeError`` (``None`` where a value is required included), a wrong *value*
of the right type a ``ValueError``. ``bool`` is never accepted as a number (``True`` is an
``int`` in Python, never what a caller meant by ``concurrency=True``). NumPy scalars and other
``numbers.Real`` / ``numbers.Integral`` are accepted and returned as ``float`` / ``int``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import Any, Literal, TypeVar, overload

__all__ = [
    "check_callable",
    "check_choice",
    "check_fraction",
    "check_instance",
    "check_int",
    "check_number",
    "check_seconds",
]

T = TypeVar("T")


def _got(value: object) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _type_error(name: str, what: str, value: object, hint: str | None = None) -> TypeError:
    message = f"'{name}' must be {what}, got {_got(value)}"
    return TypeError(message + (f"\nHINT: {hint}" if hint else ""))


def _bounds(
    minimum: float | None, maximum: float | None, *, open_min: bool, open_max: bool = False
) -> str:
    low = None if minimum is None else f"{'>' if open_min else '>='} {minimum:g}"
    high = None if maximum is None else f"{'<' if open_max else '<='} {maximum:g}"
    if low and high:
        return f"{low} and {high}"
    return low or high or ""


@overload
def check_int(
    name: str,
    value: object,
    *,
    minimum: int | None = ...,
    maximum: int | None = ...,
    allow_none: Literal[False] = ...,
) -> int: ...
@overload
def check_int(
    name: str,
    value: object,
    *,
    minimum: int | None = ...,
    maximum: int | None = ...,
    allow_none: bool,
) -> int | None: ...
def check_int(
    name: str,
    value: object,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    allow_none: bool = False,
) -> int | None:
    """``value`` as an ``int`` within ``[minimum, maximum]`` (None allowed if ``allow_none``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        what = "an int" + (" or None" if allow_none else "")
        raise _type_error(name, what, value)
    number = int(value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(
            f"'{name}' must be {_bounds(minimum, maximum, open_min=False)}, got {number!r}"
        )
    return number


@overload
def check_number(
    name: str,
    value: object,
    *,
    minimum: float | None = ...,
    above: float | None = ...,
    maximum: float | None = ...,
    below: float | None = ...,
    allow_none: Literal[False] = ...,
    allow_inf: bool = ...,
    what: str = ...,
) -> float: ...
@overload
def check_number(
    name: str,
    value: object,
    *,
    minimum: float | None = ...,
    above: float | None = ...,
    maximum: float | None = ...,
    below: float | None = ...,
    allow_none: bool,
    allow_inf: bool = ...,
    what: str = ...,
) -> float | None: ...
def check_number(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
    allow_none: bool = False,
    allow_inf: bool = False,
    what: str = "a number",
) -> float | None:
    """``value`` as a finite ``float`` (``inf`` if ``allow_inf``); ``>= minimum`` or ``> above``,
    and ``<= maximum`` or ``< below``. NaN is always refused."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _type_error(name, what + (" or None" if allow_none else ""), value)
    number = float(value)
    bad = math.isnan(number) or (not allow_inf and math.isinf(number))
    if minimum is not None and number < minimum:
        bad = True
    if above is not None and number <= above:
        bad = True
    if maximum is not None and number > maximum:
        bad = True
    if below is not None and number >= below:
        bad = True
    if bad:
        low = minimum if above is None else above
        high = maximum if below is None else below
        condition = _bounds(low, high, open_min=above is not None, open_max=below is not None)
        finite = "" if allow_inf or high is not None else " and finite"
        condition = (condition + finite) if condition else finite.removeprefix(" and ")
        raise ValueError(f"'{name}' must be {condition}, got {value!r}")
    return number


@overload
def check_seconds(
    name: str,
    value: object,
    *,
    allow_zero: bool = ...,
    allow_none: Literal[False] = ...,
    allow_inf: bool = ...,
    maximum: float | None = ...,
) -> float: ...
@overload
def check_seconds(
    name: str,
    value: object,
    *,
    allow_zero: bool = ...,
    allow_none: bool,
    allow_inf: bool = ...,
    maximum: float | None = ...,
) -> float | None: ...
def check_seconds(
    name: str,
    value: object,
    *,
    allow_zero: bool = False,
    allow_none: bool = False,
    allow_inf: bool = False,
    maximum: float | None = None,
) -> float | None:
    """A duration in seconds: ``> 0`` (``>= 0`` if ``allow_zero``), finite unless ``allow_inf``."""
    return check_number(
        name,
        value,
        minimum=0.0 if allow_zero else None,
        above=None if allow_zero else 0.0,
        maximum=maximum,
        allow_none=allow_none,
        allow_inf=allow_inf,
        what="a number of seconds",
    )


def check_fraction(
    name: str, value: object, *, allow_zero: bool = False, allow_none: bool = False
) -> float | None:
    """A fraction in ``(0, 1]`` (``[0, 1]`` if ``allow_zero``)."""
    return check_number(
        name,
        value,
        minimum=0.0 if allow_zero else None,
        above=None if allow_zero else 0.0,
        maximum=1.0,
        allow_none=allow_none,
    )


def check_callable(name: str, value: T, *, allow_none: bool = False, hint: str | None = None) -> T:
    """``value`` itself, if it is callable (or None when ``allow_none``)."""
    if value is None and allow_none:
        return value
    if not callable(value):
        raise _type_error(name, "callable" + (" or None" if allow_none else ""), value, hint)
    return value


def check_choice(name: str, value: Any, choices: Collection[Any]) -> Any:
    """``value`` itself, if it is one of ``choices``."""
    try:
        ok = value in choices
    except TypeError:  # unhashable against a set
        ok = False
    if not ok:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"'{name}' must be one of {listed}, got {value!r}")
    return value


def check_instance(
    name: str, value: Any, kind: type | tuple[type, ...], what: str, hint: str | None = None
) -> Any:
    """``value`` itself, if it is an instance of ``kind`` (described as ``what``)."""
    if not isinstance(value, kind):
        raise _type_error(name, what, value, hint)
    return value
