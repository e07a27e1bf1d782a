import asyncio

import requests
from minio import Minio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway import util
from gateway.services import LegacyClient, backoff, enrich_user

app = Starlette()
legacy = LegacyClient()


async def load_profile(uid: int) -> dict:
    return requests.get(f"https://profiles.internal/{uid}", timeout=5).json()  # expect: SLP401


@app.route("/users/{uid:int}")
async def user(request: Request) -> JSONResponse:
    uid = request.path_params["uid"]
    data = enrich_user(uid)  # expect: SLP401
    profile = await load_profile(uid)  # ok: SLP401 reported inside load_profile
    return JSONResponse({"user": data, "profile": profile})


@app.route("/users/{uid:int}/offloaded")
async def user_offloaded(request: Request) -> JSONResponse:
    uid = request.path_params["uid"]
    data = await run_in_threadpool(enrich_user, uid)  # ok: SLP401
    return JSONResponse(data)


@app.route("/legacy/{path:path}")
async def legacy_proxy(request: Request) -> JSONResponse:
    path = "/" + request.path_params["path"]
    name = legacy.label(path)  # ok: SLP401 string work only
    doc = legacy.get(path)  # expect: SLP401
    raw = util.fetch_raw("https://legacy.internal/raw" + path)  # expect: SLP401
    return JSONResponse({"name": name, "doc": doc, "size": len(raw)})


@app.route("/legacy/retry/{path:path}")
async def legacy_retry(request: Request) -> JSONResponse:
    path = "/" + request.path_params["path"]
    for attempt in range(3):
        try:
            return JSONResponse(await asyncio.to_thread(legacy.get, path))  # ok: SLP401
        except requests.RequestException:
            backoff(attempt)  # expect: SLP401
    return JSONResponse({"error": "unavailable"}, status_code=503)


@app.route("/upload", methods=["POST"])
def upload(request: Request) -> JSONResponse:
    mc = Minio("minio:9000", access_key="k", secret_key="s")  # expect: SLP102
    mc.put_object("uploads", "latest", request.stream(), length=-1, part_size=10 * 1024 * 1024)
    return JSONResponse({"ok": True})
