"""The pymongo watcher: command fingerprints, the listener on pymongo's own event objects, and
a real server when ``MONGODB_URL`` names one (none runs on the CI machine: that test skips)."""

from __future__ import annotations

import datetime
import os
from typing import Any

import pymongo
import pytest
from pymongo import monitoring

import slipstream as ss
from slipstream._impl.detect.mongowatch import mongo_fingerprint

ADDRESS = ("127.0.0.1", 27017)


class TestFingerprint:
    @pytest.mark.parametrize(
        ("name", "command", "expected"),
        [
            ("find", {"find": "users", "filter": {"_id": 42}}, "find test.users {_id: ?}"),
            (
                "find",
                {"find": "users", "filter": {"name": "x", "age": {"$gt": 3}}},
                "find test.users {age: {$gt: ?}, name: ?}",
            ),
            (
                "find",
                {"find": "users", "filter": {"_id": {"$in": [1, 2, 3]}}},
                "find test.users {_id: {$in: [?]}}",
            ),
            (
                "find",
                {"find": "u", "filter": {"$or": [{"a": 1}, {"a": 2}, {"b": 1}]}},
                "find test.u {$or: [{a: ?}, {b: ?}]}",
            ),
            ("count", {"count": "users", "query": {"x": 1}}, "count test.users {x: ?}"),
            ("distinct", {"distinct": "u", "key": "k", "query": None}, "distinct test.u.k {}"),
            (
                "aggregate",
                {"aggregate": "u", "pipeline": [{"$match": {"a": 5}}, {"$group": {"_id": "$b"}}]},
                "aggregate test.u [$match {a: ?}, $group]",
            ),
            ("insert", {"insert": "u", "documents": [{"a": 1}]}, "insert test.u"),
            (
                "update",
                {"update": "u", "updates": [{"q": {"_id": 1}, "u": {"$set": {"a": 2}}}]},
                "update test.u {_id: ?}",
            ),
            (
                "delete",
                {"delete": "u", "deletes": [{"q": {"a": 1}, "limit": 1}]},
                "delete test.u {a: ?}",
            ),
            ("commitTransaction", {"commitTransaction": 1}, "commitTransaction"),
        ],
    )
    def test_values_become_question_marks_and_keys_stay(
        self, name: str, command: dict[str, Any], expected: str
    ) -> None:
        """Keys, operators and stage names are kept, values and value lists become ``?``."""
        assert mongo_fingerprint(name, "test", command) == expected

    def test_the_same_query_with_other_values_has_one_fingerprint(self) -> None:
        """Two lookups of different ids, keys in another order: one fingerprint."""
        a = mongo_fingerprint("find", "db", {"find": "u", "filter": {"a": 1, "b": "x"}})
        b = mongo_fingerprint("find", "db", {"find": "u", "filter": {"b": "y", "a": 9}})
        assert a == b


def started(listener: Any, request_id: int, command: dict[str, Any], op: int | None) -> None:
    """Hand the listener the event pymongo publishes when a command starts."""
    listener.started(monitoring.CommandStartedEvent(command, "test", request_id, ADDRESS, op))


def succeeded(listener: Any, request_id: int, name: str, micros: int) -> None:
    """Hand the listener the event pymongo publishes when a command's reply arrives."""
    listener.succeeded(
        monitoring.CommandSucceededEvent(
            datetime.timedelta(microseconds=micros), {"ok": 1}, name, request_id, ADDRESS, None
        )
    )


class TestListener:
    def test_a_find_per_item_is_slp201_with_pymongos_durations(self) -> None:
        """Five finds from one line, each with its measured round trip, make one SLP201 at the
        line that started them; ``getMore`` and handshakes are not counted."""
        listener = ss.mongo_listener()
        with ss.watch(min_repeats=5) as w:
            for i in range(5):
                started(listener, i, {"find": "users", "filter": {"_id": i}}, i)
                succeeded(listener, i, "find", 20_000)
            started(listener, 99, {"getMore": 1, "collection": "users"}, 4)
            succeeded(listener, 99, "getMore", 1_000)
            started(listener, 100, {"hello": 1}, None)
            succeeded(listener, 100, "hello", 1_000)
        assert w.report is not None
        (f,) = w.report.findings
        assert (f.code, f.path, f.count) == ("SLP201", __file__, 5)
        assert f.fingerprint == "find test.users {_id: ?}"
        assert f.total_s == pytest.approx(0.1)
        assert w.report.queries == 5

    def test_one_bulk_write_split_in_batches_counts_once(self) -> None:
        """pymongo sends a big ``insert_many`` as several commands with one operation id."""
        listener = ss.mongo_listener()
        with ss.watch(min_repeats=2, min_total_s=0) as w:
            for request_id in (1, 2, 3):
                started(listener, request_id, {"insert": "u", "documents": []}, 1)
                succeeded(listener, request_id, "insert", 10)
        assert w.report is not None
        assert w.report.by_fingerprint == {"insert test.u": 1}
        assert w.report.findings == ()

    def test_a_failed_command_counts_and_outside_a_scope_nothing_does(self) -> None:
        """A command that failed took its round trip too; with no scope open nothing is kept."""
        listener = ss.mongo_listener()
        started(listener, 1, {"find": "u", "filter": {}}, 1)  # no scope: dropped
        with ss.watch(min_repeats=2) as w:
            started(listener, 2, {"delete": "u", "deletes": [{"q": {"a": 1}}]}, 2)
            listener.failed(
                monitoring.CommandFailedEvent(
                    datetime.timedelta(milliseconds=3), {"ok": 0}, "delete", 2, ADDRESS, 2
                )
            )
            succeeded(listener, 1, "find", 10)  # the reply of the unwatched one: ignored
        assert w.report is not None
        assert w.report.by_fingerprint == {"delete test.u {a: ?}": 1}
        assert w.report.db_s == pytest.approx(0.003)


class TestInstrument:
    def test_a_client_built_with_the_listener_is_accepted(self) -> None:
        """``instrument`` checks the client carries the listener (pymongo takes none later)."""
        client: Any = pymongo.MongoClient(
            "mongodb://127.0.0.1:1/", connect=False, event_listeners=[ss.mongo_listener()]
        )
        try:
            ss.instrument(client)
        finally:
            client.close()

    def test_a_client_without_it_is_refused_saying_how(self) -> None:
        """Sync and async clients built without the listener get a ValueError naming the fix."""
        for cls in (pymongo.MongoClient, pymongo.AsyncMongoClient):
            client: Any = cls("mongodb://127.0.0.1:1/", connect=False)
            with pytest.raises(ValueError, match=r"event_listeners=\[ss.mongo_listener\(\)\]"):
                ss.instrument(client)


@pytest.mark.skipif(
    not os.environ.get("MONGODB_URL"),
    reason="no MongoDB server: set MONGODB_URL=mongodb://127.0.0.1:27017 to run it",
)
def test_a_real_server_find_per_item() -> None:
    """On a real server: a ``find_one`` per id is SLP201 at its line, ``insert_many`` once."""
    client: Any = pymongo.MongoClient(
        os.environ["MONGODB_URL"], event_listeners=[ss.mongo_listener()]
    )
    try:
        users = client.slipstream_test.users
        users.drop()
        with ss.watch(client, min_repeats=2, min_total_s=0) as w:
            users.insert_many([{"_id": i} for i in range(5)])
            for i in range(5):
                assert users.find_one({"_id": i}) == {"_id": i}
        assert w.report is not None
        assert w.report.by_fingerprint == {
            "insert slipstream_test.users": 1,
            "find slipstream_test.users {_id: ?}": 5,
        }
        (f,) = w.report.findings
        assert (f.code, f.path) == ("SLP201", __file__)
    finally:
        client.close()
