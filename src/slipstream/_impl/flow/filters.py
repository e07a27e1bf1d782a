"""Which exceptions count: the ``on=`` of ``Retry`` and the ``counts=`` of ``CircuitBreaker``.

Both take the same three forms (an exception type, a tuple of them, or a predicate) and turn
them, once at construction, into one predicate that the call path runs without branching.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ExceptionFilter", "matcher"]

ExceptionFilter = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)


def matcher(on: ExceptionFilter) -> Callable[[BaseException], bool]:
    """The predicate for ``on``; TypeError when it is none of the three forms."""
    if isinstance(on, type) and issubclass(on, BaseException):
        kind: type[BaseException] = on
        return lambda exc: isinstance(exc, kind)
    if isinstance(on, tuple):
        if not all(isinstance(t, type) and issubclass(t, BaseException) for t in on):
            raise TypeError("'on' must be an exception type, a tuple of them, or a predicate")
        return lambda exc: isinstance(exc, on)
    if callable(on):
        return on  # type: ignore[return-value]  # a predicate, by elimination
    raise TypeError(
        f"'on' must be an exception type, a tuple of them, or a predicate, got {type(on).__name__}"
    )
