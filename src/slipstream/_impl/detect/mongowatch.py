"""The pymongo watcher: a ``monitoring.CommandListener``, pymongo's public hook, given to the
client at construction (``MongoClient(..., event_listeners=[ss.mongo_listener()])``; pymongo
takes no listener later). It sees the sync ``MongoClient`` and the asyncio
``AsyncMongoClient`` (pymongo 4.10+, motor's successor). Motor itself runs pymongo on a thread
pool without the caller's context variables, so no scope reaches it.

A command's fingerprint is its name, namespace and the *shape* of its filter: keys and
operators kept, values replaced by ``?``, a list of values (``$in``) by ``[?]``:
``find test.users {_id: ?}`` for ``users.find_one({"_id": 42})``. ``find``, ``aggregate``,
``count`` and ``distinct`` are reads (SLP201), ``insert``, ``update``, ``delete`` and
``findAndModify`` writes (SLP202), ``commitTransaction`` a commit (SLP203); the handshake,
``getMore`` (a cursor's next batch) and the rest are not counted. The batches pymongo splits
one ``insert_many`` into share its operation id and count once. The call site is taken when
the command starts (in the caller's thread or task), the duration is the server's round trip
that pymongo measured.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from .fingerprint import Kind
from .scope import CURRENT, Watch, call_site, record_as

__all__ = ["check_mongo_client", "is_mongo_client", "mongo_fingerprint", "mongo_listener"]

_KINDS: dict[str, Kind] = {
    "find": "select",
    "aggregate": "select",
    "count": "select",
    "distinct": "select",
    "insert": "insert",
    "update": "update",
    "findAndModify": "update",
    "delete": "delete",
    "commitTransaction": "commit",
}
# where each command keeps its filter
_FILTER = {"find": "filter", "count": "query", "distinct": "query", "findAndModify": "query"}
_BOUND = 10_000  # pending commands and recent operation ids kept, at most


def _shape(value: Any, depth: int = 0) -> str:
    if isinstance(value, Mapping):
        if depth >= 4:
            return "{...}"
        inner = ", ".join(f"{k}: {_shape(value[k], depth + 1)}" for k in sorted(value))
        return "{" + inner + "}"
    if isinstance(value, (list, tuple)):
        if any(isinstance(v, Mapping) for v in value):  # $or / $and: the shapes of the clauses
            return "[" + ", ".join(dict.fromkeys(_shape(v, depth + 1) for v in value)) + "]"
        return "[?]"
    return "?"


def mongo_fingerprint(name: str, database: str, command: Mapping[str, Any]) -> str:
    """``name namespace shape`` of one command document (the one a ``CommandStartedEvent``
    carries): ``find test.users {_id: ?}``."""
    if name == "commitTransaction":
        return name
    text = f"{name} {database}.{command.get(name, '?')}"
    if name == "distinct":
        text += f".{command.get('key', '?')}"
    if name in _FILTER:
        return f"{text} {_shape(command.get(_FILTER[name]) or {})}"
    if name == "aggregate":
        stages = []
        for stage in command.get("pipeline") or ():
            for op, arg in stage.items():
                stages.append(f"{op} {_shape(arg)}" if op == "$match" else op)
        return f"{text} [{', '.join(stages)}]"
    if name in ("update", "delete"):
        statements = command.get(f"{name}s") or ()  # update's "updates", delete's "deletes"
        first = statements[0] if statements else {}
        return f"{text} {_shape(first.get('q') or {})}"
    return text  # insert: the documents are values


def _listener_class() -> type:
    from pymongo import monitoring

    class SlipstreamCommandListener(monitoring.CommandListener):
        """Counts the commands sent inside an ``ss.watch()`` scope (``ss.mongo_listener``)."""

        def __init__(self) -> None:
            self._pending: dict[tuple[int, Any], tuple[Watch, str, Kind, Any]] = {}
            self._ops: dict[int, None] = {}

        def started(self, event: Any) -> None:
            scope = CURRENT.get()
            if scope is None:
                return
            kind = _KINDS.get(event.command_name)
            if kind is None:
                return
            op = event.operation_id
            if op is not None:
                if op in self._ops:
                    return  # a later batch of one bulk write
                if len(self._ops) >= _BOUND:
                    self._ops.clear()
                self._ops[op] = None
            fp = mongo_fingerprint(event.command_name, event.database_name, event.command)
            pending = self._pending
            if len(pending) >= _BOUND:  # commands whose reply never came (a dead process)
                pending.clear()
            pending[event.request_id, event.connection_id] = (scope, fp, kind, call_site(2))

        def _ended(self, event: Any) -> None:
            found = self._pending.pop((event.request_id, event.connection_id), None)
            if found is not None:
                scope, fp, kind, site = found
                record_as(scope, fp, kind, event.duration_micros / 1e6, site)

        def succeeded(self, event: Any) -> None:
            self._ended(event)

        def failed(self, event: Any) -> None:
            self._ended(event)

    return SlipstreamCommandListener


_CLASS: list[type] = []


def mongo_listener() -> Any:
    """A pymongo command listener for ``ss.watch()`` scopes: pass it when building the client,
    ``MongoClient(url, event_listeners=[ss.mongo_listener()])`` (or ``AsyncMongoClient``).

    Raises:
        ModuleNotFoundError: pymongo is not installed.
    """
    if not _CLASS:
        _CLASS.append(_listener_class())
    return _CLASS[0]()


def is_mongo_client(target: object) -> bool:
    """Is ``target`` a pymongo ``MongoClient`` or ``AsyncMongoClient``?"""
    pymongo = sys.modules.get("pymongo")
    if pymongo is None:
        return False
    classes = tuple(
        c for c in (getattr(pymongo, n, None) for n in ("MongoClient", "AsyncMongoClient")) if c
    )
    return isinstance(target, classes)


def check_mongo_client(client: Any) -> None:
    """``ss.instrument(client)`` for pymongo: the listener must be there since construction."""
    if not _CLASS or not any(isinstance(x, _CLASS[0]) for x in client.options.event_listeners):
        raise ValueError(
            "this pymongo client was built without slipstream's listener, and pymongo takes "
            "listeners only at construction: build it with "
            "event_listeners=[ss.mongo_listener()]"
        )
