"""A statement's fingerprint: the SQL with its values taken out, so that the same query with
other values counts as the same query.

``SELECT * FROM users WHERE id = 42`` and ``select *  from users where id=7`` both become
``select * from users where id = ?``. String and number literals, driver placeholders (``$1``,
``%s``, ``%(name)s``, ``:name``, ``?``) become ``?``; an ``IN (...)`` list of any length
becomes ``IN (?)``; a multi-row ``VALUES (...), (...)`` becomes one row; whitespace is
collapsed and the text lower-cased. One compiled-regex pass per step, and a bounded cache
keyed by the raw text (drivers send the same parameterised text again and again), so a
repeated statement costs one dictionary look-up.
"""

from __future__ import annotations

import re
from typing import Literal, cast

__all__ = ["Kind", "classify", "fingerprint"]

Kind = Literal["select", "insert", "update", "delete", "commit", "other"]

_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_STRING = re.compile(r"'(?:[^']|'')*'|\$\$.*?\$\$", re.S)
_PARAM = re.compile(r"%\([^)]*\)s|%s|\$\d+|(?<![:\w]):[a-zA-Z_]\w*|\?")
_NUMBER = re.compile(r"(?<![\w.\"])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?\b", re.I)
_QUICK = re.compile(r"'(?:[^']|'')*'|(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
_SPACE = re.compile(r"\s+")
_PUNCT = re.compile(r"\s*([(),=<>])\s*")
_IN_LIST = re.compile(r"\bin \((?:\?, )*\?\)")
_VALUES = re.compile(r"\bvalues (\([^()]*\))(?:, \([^()]*\))+")
_KINDS = frozenset(("select", "insert", "update", "delete", "commit"))
_VERB = re.compile(r"\b(select|insert|update|delete)\b")

_CACHE: dict[str, str] = {}
_CACHE_SIZE = 4096


def _normalise(sql: str) -> str:
    text = _COMMENT.sub(" ", sql)
    text = _STRING.sub("?", text)
    text = _PARAM.sub("?", text)
    text = _NUMBER.sub("?", text)
    text = _SPACE.sub(" ", text).strip().lower()
    text = _PUNCT.sub(r" \1 ", text)
    text = _SPACE.sub(" ", text).replace("( ", "(").replace(" )", ")").replace(" ,", ",")
    text = text.replace("< =", "<=").replace("> =", ">=").replace("< >", "<>")
    text = text.replace("! =", "!=")
    text = _IN_LIST.sub("in (?)", text)
    text = _VALUES.sub(r"values \1", text)
    return text.rstrip("; ")


def fingerprint(sql: str) -> str:
    """The statement ``sql`` with literals, placeholders and ``IN`` lists replaced by ``?``,
    whitespace collapsed and lower-cased.

    Example::

        >>> fingerprint("SELECT * FROM t WHERE id IN (1, 2, 3) AND name = 'x'")
        'select * from t where id in (?) and name = ?'
    """
    found = _CACHE.get(sql)
    if found is None:
        # Values inlined (sqlite3's trace gives the statement with its values bound in): one
        # regex pass takes the plain literals out, and the statement's shape is cached instead
        # (the watchers keep the text itself: scope.record).
        shape = _QUICK.sub("?", sql)
        found = _CACHE.get(shape)
        if found is None:
            found = _normalise(sql)
            if len(_CACHE) >= _CACHE_SIZE:
                _CACHE.clear()  # bounded: generated SQL would grow it forever
            _CACHE[shape] = found
    return found


_KIND_CACHE: dict[str, Kind] = {}


def classify(fingerprinted: str) -> Kind:
    """What a fingerprinted statement does: ``select``, ``insert``, ``update``, ``delete``,
    ``commit`` (``COMMIT``, ``END``) or ``other`` (DDL, ``BEGIN``, savepoints...)."""
    kind = _KIND_CACHE.get(fingerprinted)
    if kind is None:
        first = fingerprinted.split(" ", 1)[0]
        word = first
        if first in ("with", "("):
            verbs = _VERB.findall(fingerprinted)
            writes = [v for v in verbs if v != "select"]
            word = writes[0] if writes else ("select" if verbs else "other")
        if word == "end":
            word = "commit"
        kind = cast(Kind, word) if word in _KINDS else "other"
        if len(_KIND_CACHE) >= _CACHE_SIZE:
            _KIND_CACHE.clear()
        _KIND_CACHE[fingerprinted] = kind
    return kind
