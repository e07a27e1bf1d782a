"""CacheControl: Cache-Control on the configured routes only, over real HTTP; never over the
app's own header, never on an error, a POST or a temporary redirect."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Response
from fastapi.responses import RedirectResponse
from hypothesis import given
from hypothesis import strategies as st

import slipstream as ss

from .conftest import Serve

Run = Callable[[Coroutine[Any, Any, Any]], Any]

RULES = {
    "/api/config": "public, max-age=60",
    "/static/": "public, max-age=86400",
    "/static/live/": "no-cache",
}


def make_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(ss.CacheControl, rules=RULES)

    @app.get("/api/config")
    @app.post("/api/config")
    async def config() -> dict[str, int]:
        return {"ttl": 60}

    @app.get("/api/config/flags")
    async def flags() -> list[str]:
        return []

    @app.get("/api/configs")
    async def configs() -> list[str]:
        return []

    @app.get("/static/private.css")
    async def private() -> Response:
        return Response("body{}", headers={"Cache-Control": "private, no-store"})

    @app.api_route("/static/{name}", methods=["GET", "HEAD"])
    async def asset(name: str) -> Response:
        return Response("body{}", media_type="text/css")

    @app.get("/static/live/{name}")
    async def live(name: str) -> Response:
        return Response("{}", media_type="application/json")

    @app.get("/api/config/broken")
    async def broken() -> None:
        raise HTTPException(status_code=503)

    @app.get("/api/config/moved")
    async def moved() -> RedirectResponse:
        return RedirectResponse("/api/config", status_code=307)

    @app.get("/api/price")
    @ss.cache_control("public, max-age=5")
    async def price() -> dict[str, int]:
        return {"price": 3}

    return app


class TestCacheControl:
    def test_headers_on_the_configured_routes_only(self, arun: Run, serving: Serve) -> None:
        """Each route gets the longest matching rule's value at a segment boundary, or the
        decorator's; the app's own header, error statuses, a 307, a POST and unconfigured
        paths get none from the middleware."""

        async def main() -> dict[str, str | None]:
            async with serving(make_app()) as url, httpx.AsyncClient(base_url=url) as http:
                got: dict[str, str | None] = {}
                for path in (
                    "/api/config",
                    "/api/config/flags",
                    "/api/configs",
                    "/static/site.css",
                    "/static/live/feed.json",
                    "/static/private.css",
                    "/api/config/broken",
                    "/api/config/moved",
                    "/api/config/nowhere",
                    "/api/price",
                ):
                    response = await http.get(path, follow_redirects=False)
                    got[path] = response.headers.get("cache-control")
                got["POST /api/config"] = (await http.post("/api/config")).headers.get(
                    "cache-control"
                )
                got["HEAD /static/site.css"] = (await http.head("/static/site.css")).headers.get(
                    "cache-control"
                )
                return got

        assert {
            "/api/config": "public, max-age=60",
            "/api/config/flags": "public, max-age=60",
            "/api/configs": None,
            "/static/site.css": "public, max-age=86400",
            "/static/live/feed.json": "no-cache",
            "/static/private.css": "private, no-store",
            "/api/config/broken": None,
            "/api/config/moved": None,
            "/api/config/nowhere": None,  # a 404 under a cached prefix
            "/api/price": "public, max-age=5",
            "POST /api/config": None,
            "HEAD /static/site.css": "public, max-age=86400",
        } == arun(main())

    @given(
        key=st.from_regex(r"/[a-z]{1,6}(/[a-z]{1,6}){0,2}", fullmatch=True),
        rest=st.from_regex(r"[a-z/]{0,8}", fullmatch=True),
    )
    def test_a_rule_covers_its_path_and_below_it_only(self, key: str, rest: str) -> None:
        """A rule applies to its own path and to every path under it at a '/' boundary, and to
        no path that merely starts with the same letters."""
        middleware = ss.CacheControl(lambda *a: None, {key: "max-age=1"})  # type: ignore[arg-type]
        assert b"max-age=1" == middleware.value_for(key)
        assert b"max-age=1" == middleware.value_for(f"{key}/{rest}")
        assert middleware.value_for(f"{key}x{rest}") is None

    def test_bad_rules_are_refused_by_name(self) -> None:
        """A rule key that is not a path, or a value that is not one line of ASCII, is refused
        naming the rule; so is a bad value given to the decorator."""

        async def app(scope: Any, receive: Any, send: Any) -> None:
            pass

        with pytest.raises(ValueError, match="'rules' keys must be paths"):
            ss.CacheControl(app, {"api": "max-age=1"})
        with pytest.raises(ValueError, match=r"rules\['/api'\]"):
            ss.CacheControl(app, {"/api": "max-age=1\r\nSet-Cookie: x"})
        with pytest.raises(TypeError, match="'value' must be a str"):
            ss.cache_control(60)  # type: ignore[arg-type]


class TestCacheControlArguments:
    def test_statuses_and_methods_are_checked_by_name(self) -> None:
        """Statuses outside 100-599, non-int statuses, a string, or empty sets name their
        parameter."""
        import pytest

        import slipstream as ss

        async def app(scope: object, receive: object, send: object) -> None:
            return None

        for kwargs, error, name in [
            ({"statuses": [42]}, ValueError, "statuses"),
            ({"statuses": ["200"]}, TypeError, "statuses"),
            ({"statuses": "200"}, TypeError, "statuses"),
            ({"statuses": []}, ValueError, "statuses"),
            ({"methods": [1]}, TypeError, "methods"),
            ({"methods": []}, ValueError, "methods"),
        ]:
            with pytest.raises(error, match=f"'{name}'"):
                ss.CacheControl(app, {"/": "no-store"}, **kwargs)  # type: ignore[arg-type]
