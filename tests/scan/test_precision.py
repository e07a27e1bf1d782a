"""The scanner's precision on shapes of real code, and what its knowledge table makes of a
call: each test is one shape that was misread, or one kind of entry, with the finding that must
(or must not) follow."""

from __future__ import annotations

from pathlib import Path

from slipstream._impl.scan import scan

from .helpers import codes, write


class TestPrecisionOnRealShapes:
    """Shapes a hand review of real code found misread (distributed, redis, moto)."""

    def test_numeric_getaddrinfo_does_not_block(self, tmp_path: Path) -> None:
        """getaddrinfo with AI_NUMERICHOST (here through a module constant) does no DNS and is not
        reported; without it, it is."""
        write(
            tmp_path,
            {
                "m.py": """
                import socket

                _NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV

                async def fast(host, port):
                    return socket.getaddrinfo(host, port, flags=_NUMERIC)

                async def slow(host, port):
                    return socket.getaddrinfo(host, port)
                """
            },
        )
        assert [("SLP401", "m.py", 10)] == codes(scan(tmp_path, jobs=1))

    def test_a_branch_that_leaves_the_loop_runs_once(self, tmp_path: Path) -> None:
        """Work in a loop branch that returns runs once, not per item; the same work on the loop's
        path is reported."""
        write(
            tmp_path,
            {
                "m.py": """
                import json

                def find(items, raw):
                    for item in items:
                        if item.name == "x":
                            return json.loads(raw)
                        print(json.loads(raw))
                """
            },
        )
        assert [("SLP103", "m.py", 8)] == codes(scan(tmp_path, jobs=1))

    def test_a_union_of_a_sync_and_an_async_type_is_neither(self, tmp_path: Path) -> None:
        """`httpx.Client | httpx.AsyncClient` is not read as the sync client; `httpx.Client | None`
        is."""
        write(
            tmp_path,
            {
                "m.py": """
                import httpx

                async def get(client: httpx.Client | httpx.AsyncClient, url):
                    return await client.get(url)

                async def get_sync(client: httpx.Client | None, url):
                    return client.get(url)
                """
            },
        )
        assert [("SLP401", "m.py", 8)] == codes(scan(tmp_path, jobs=1))

    def test_a_project_module_named_like_the_stdlib_hides_nothing(self, tmp_path: Path) -> None:
        """A package with its own `socket.py` or `json/` does not make the standard library's
        `socket` or `json` look like project code (a vendored redis hid every socket call)."""
        write(
            tmp_path,
            {
                "vendor/__init__.py": "",
                "vendor/_parsers/__init__.py": "",
                "vendor/_parsers/socket.py": "x = 1\n",
                "vendor/json/__init__.py": "",
                "app.py": (
                    "import socket\n\nasync def resolve(host):\n    socket.getaddrinfo(host, 80)\n"
                ),
            },
        )
        assert [("SLP401", "app.py", 4)] == codes(scan(tmp_path, jobs=1))


class TestKnowledge:
    """What the knowledge table and a user's additions make of a call: a decorator that moves
    the body to a thread, an invariant entry followed through a helper."""

    def test_a_nonblocking_function_does_not_block(self, tmp_path: Path) -> None:
        """`@ss.nonblocking` runs the body in a worker thread: calling it from async code does not
        block the loop; the same function undecorated does."""
        write(
            tmp_path,
            {
                "m.py": """
                import time

                import slipstream as ss

                @ss.nonblocking
                def slow_read():
                    time.sleep(1)

                def slow():
                    time.sleep(1)

                async def handler():
                    await slow_read()
                    slow()
                """
            },
        )
        assert [("SLP401", "m.py", 15)] == codes(scan(tmp_path, jobs=1))

    def test_user_invariant_knowledge_reaches_through_a_helper(self, tmp_path: Path) -> None:
        """An `invariant` entry in `knowledge=` is followed through a helper like a built-in one:
        the helper called in a loop with unchanging arguments is SLP103 at the call."""
        write(
            tmp_path,
            {
                "m.py": """
                from vendor.schemas import compile_schema

                def validator():
                    return compile_schema("order.json")

                def check(orders):
                    for order in orders:
                        validator().validate(order)
                """
            },
        )
        assert [] == scan(tmp_path, jobs=1)
        found = scan(tmp_path, jobs=1, knowledge={"invariant": ["vendor.schemas.compile_schema"]})
        assert [("SLP103", "m.py", 9)] == codes(found)
