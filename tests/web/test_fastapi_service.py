"""examples/fastapi_service over real HTTP against a real PostgreSQL: one role query per request,
a TTL-cached config, events that reach the database before the pool closes, a zip export in a
thread, Cache-Control on the config only."""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

import slipstream as ss

from ..conftest import load_example
from .conftest import Serve

Run = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture(scope="module")
def service() -> ModuleType:
    return load_example("fastapi_service/app.py", "fastapi_service_app")


@pytest.fixture
def schema(postgres_url: str, arun: Run) -> Iterator[str]:
    """A schema of its own, so the test shares no table with anything else on the database."""
    import asyncpg

    name = f"svc_{uuid.uuid4().hex[:10]}"

    async def sql(statement: str) -> None:
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    arun(sql(f"CREATE SCHEMA {name}"))
    yield name
    arun(sql(f"DROP SCHEMA {name} CASCADE"))


class TestFastAPIService:
    def test_the_service_end_to_end(
        self, arun: Run, serving: Serve, service: ModuleType, postgres_url: str, schema: str
    ) -> None:
        """Two member listings of 20 role checks make two role queries; three config reads
        make one query and carry public max-age=60; five events accepted with 202 are all in
        the events table once the app has shut down; the export is a zip of the 20 members
        with the app's own no-store; /stats shows the loop watch beating and 5 tasks run."""
        import asyncpg

        monitor = ss.Monitor()
        app = service.create_app(postgres_url, schema=schema, monitor=monitor)

        async def main() -> dict[str, Any]:
            seeding = await asyncpg.create_pool(
                postgres_url, min_size=1, max_size=1, server_settings={"search_path": schema}
            )
            await service.seed(seeding)
            got: dict[str, Any] = {}
            async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
                got["members"] = [
                    (await http.get("/api/projects/1/members")).json() for _ in range(2)
                ]
                got["config"] = [await http.get("/api/config") for _ in range(3)]
                got["events"] = [
                    (await http.post("/api/events", json={"kind": "view", "detail": str(i)}))
                    for i in range(5)
                ]
                got["export"] = await http.get("/api/projects/1/export.zip")
                got["members_headers"] = (await http.get("/api/projects/1/members")).headers
                got["stats"] = (await http.get("/stats")).json()
            got["stored"] = await seeding.fetchval("SELECT count(*) FROM events")
            await seeding.close()
            return got

        got = arun(main())
        first, second = got["members"]
        assert first == second
        assert 20 == len(first)
        assert [0, 5, 10, 15] == [m["user_id"] for m in first if m["can_edit"]]
        assert {"user_id": 5, "name": "user 5", "role": "admin", "can_edit": True} == first[5]
        counts = got["stats"]["monitor"]
        assert 3 == counts["db.roles"]["count"]  # one per listing (the third one included)
        assert 1 == counts["db.config"]["count"]
        assert all({"theme": "dark", "max_upload": "10"} == r.json() for r in got["config"])
        assert all("public, max-age=60" == r.headers["cache-control"] for r in got["config"])
        assert [202] * 5 == [r.status_code for r in got["events"]]
        assert 5 == got["stored"]  # drained before the registry closed the pool
        export = got["export"]
        assert "no-store" == export.headers["cache-control"]
        with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
            lines = archive.read("members.csv").decode().splitlines()
        assert 21 == len(lines)
        assert "cache-control" not in got["members_headers"]
        assert "x-process-time" in got["members_headers"]
        assert got["stats"]["loop"]["beats"] > 0
        assert 5 == got["stats"]["tasks"]["started"]
        assert 3 == counts["GET /api/projects/{project_id}/members"]["count"]


def test_the_doc_shows_the_example_as_it_is() -> None:
    """docs/frameworks.md shows examples/fastapi_service/app.py verbatim, so the page's code is
    the code this module runs."""
    root = Path(__file__).parents[2]
    doc = (root / "docs" / "frameworks.md").read_text()
    shown = re.search(r"<!-- examples/fastapi_service/app.py -->\n```python\n(.*?)```", doc, re.S)
    assert shown is not None
    assert (root / "examples" / "fastapi_service" / "app.py").read_text() == shown.group(1)
