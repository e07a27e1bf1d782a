"""The runtime findings file: what the run-time watchers saw, on disk, for the scanner to join.

The watchers (``detect``) write it with ``dump``; ``slipstream scan --runtime FILE`` reads it
with ``load`` and joins it with the static findings by call site. The format is one JSON
object::

    {"version": 1, "findings": [
        {"code": "SLP201", "path": "/abs/app/orders.py", "line": 12, "function": "load_user",
         "count": 37, "total_s": 1.2, "fingerprint": "select * from users where id = ?"}
    ]}

``dump`` merges into an existing file: a finding with the same code, path, line and
fingerprint as one already there adds its ``count`` and ``total_s`` to it, so several test
processes or several runs can record into one file. The read-merge-write is done under an
exclusive ``fcntl.flock`` on a side file ``FILE.lock`` (the data file itself is replaced, so
it cannot carry the lock), and the new content is written to a temporary file in the same
directory and moved over the old one with ``os.replace``: a reader sees the old file or the
new one, never half of one. Where ``fcntl`` does not exist (Windows) the write is still
atomic but concurrent writers are not serialised, so one writer's counts may be lost.

A file that cannot be read (missing, not JSON, another version, a finding without a field or
with a field of the wrong type) raises ``ConfigError`` naming the file and the problem; ``dump``
raises it too rather than overwrite such a file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, final

from .errors import ConfigError

__all__ = ["VERSION", "RuntimeFinding", "dump", "load", "merge"]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, see the module docstring
    fcntl = None  # type: ignore[assignment]

VERSION: Final = 1
_KEY: Final = "--runtime"
_FIELDS: Final = ("code", "path", "line", "function", "count", "total_s", "fingerprint")


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeFinding:
    """One pattern seen at run time, at one call site, summed over a run.

    Attributes:
        code: the rule code, the scanner's own (``"SLP201"`` query in a loop, ...).
        path: the call site's file as recorded (absolute).
        line: the call site's line (1-based).
        function: the name of the function holding the call site.
        count: how many times the statement ran there.
        total_s: seconds spent in those statements, in total.
        fingerprint: the normalised statement (literals and IN-lists replaced).
    """

    code: str
    path: str
    line: int
    function: str
    count: int
    total_s: float
    fingerprint: str

    @property
    def key(self) -> tuple[str, str, int, str]:
        """What two records of the same finding share: code, path, line and fingerprint."""
        return (self.code, self.path, self.line, self.fingerprint)


def dump(findings: Iterable[RuntimeFinding], path: str | os.PathLike[str]) -> None:
    """Add ``findings`` to the runtime file at ``path`` (created when missing), atomically.

    Findings with the same code, path, line and fingerprint (in the file or in ``findings``)
    are merged: their counts and seconds are added; the first one's ``function`` is kept.

    Args:
        findings: the findings to record.
        path: the runtime file.

    Raises:
        TypeError: an item of ``findings`` is not a ``RuntimeFinding``.
        ConfigError: the existing file is not a runtime file (it is left as it is).

    Example::

        dump([RuntimeFinding(code="SLP201", path="/app/orders.py", line=12,
                             function="load_user", count=37, total_s=1.2,
                             fingerprint="select * from users where id = ?")], "runtime.json")
    """
    new = list(findings)
    for item in new:
        if not isinstance(item, RuntimeFinding):
            raise TypeError(f"findings: expected RuntimeFinding items, got {type(item).__name__}")
    target = os.fspath(path)
    with _locked(target):
        existing = load(target) if os.path.exists(target) else []
        merged = merge([*existing, *new])
        _write(target, merged)


def load(path: str | os.PathLike[str]) -> list[RuntimeFinding]:
    """Read the runtime file at ``path``.

    Args:
        path: the runtime file.

    Returns:
        Its findings, in file order.

    Raises:
        ConfigError: the file is missing or unreadable, is not JSON, has another version, or a
            finding lacks a field or has one of the wrong type; the message names the file.
    """
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError(_KEY, "the runtime file does not exist", source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(_KEY, f"cannot read the runtime file: {exc}", source) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(_KEY, f"not JSON: {exc}", source) from None
    if not isinstance(data, dict):
        raise ConfigError(_KEY, "expected a JSON object with version and findings", source)
    version = data.get("version")
    if version != VERSION:
        raise ConfigError(
            _KEY, f"version {version!r} is not supported (this slipstream reads {VERSION})", source
        )
    items = data.get("findings")
    if not isinstance(items, list):
        raise ConfigError(_KEY, "'findings' must be a list", source)
    return [_finding(item, index, source) for index, item in enumerate(items)]


def _finding(item: Any, index: int, source: str) -> RuntimeFinding:
    where = f"findings[{index}]"
    if not isinstance(item, dict):
        raise ConfigError(_KEY, f"{where} must be an object", source)
    missing = [name for name in _FIELDS if name not in item]
    if missing:
        raise ConfigError(_KEY, f"{where} lacks {', '.join(missing)}", source)
    for name in ("code", "path", "function", "fingerprint"):
        if not isinstance(item[name], str):
            raise ConfigError(_KEY, f"{where}.{name} must be a string", source)
    for name in ("line", "count"):
        value = item[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(_KEY, f"{where}.{name} must be an integer >= 0", source)
    total = item["total_s"]
    if (
        not isinstance(total, int | float)
        or isinstance(total, bool)
        or not math.isfinite(total)
        or total < 0
    ):
        raise ConfigError(_KEY, f"{where}.total_s must be a number of seconds >= 0", source)
    return RuntimeFinding(
        code=item["code"],
        path=item["path"],
        line=item["line"],
        function=item["function"],
        count=item["count"],
        total_s=float(total),
        fingerprint=item["fingerprint"],
    )


def merge(findings: Iterable[RuntimeFinding]) -> list[RuntimeFinding]:
    """``findings`` with those of the same code, path, line and fingerprint added together
    (counts and seconds; the first one's ``function`` is kept), in first-seen order."""
    merged: dict[tuple[str, str, int, str], RuntimeFinding] = {}
    for item in findings:
        seen = merged.get(item.key)
        if seen is None:
            merged[item.key] = item
        else:
            merged[item.key] = RuntimeFinding(
                code=seen.code,
                path=seen.path,
                line=seen.line,
                function=seen.function,
                count=seen.count + item.count,
                total_s=seen.total_s + item.total_s,
                fingerprint=seen.fingerprint,
            )
    return list(merged.values())


def _write(target: str, findings: list[RuntimeFinding]) -> None:
    payload = {
        "version": VERSION,
        "findings": [{name: getattr(item, name) for name in _FIELDS} for item in findings],
    }
    folder = os.path.dirname(os.path.abspath(target))
    fd, temp = tempfile.mkstemp(prefix=".slipstream-runtime-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1)
            handle.write("\n")
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


@contextlib.contextmanager
def _locked(target: str) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    with open(target + ".lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
