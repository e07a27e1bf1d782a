import asyncio
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

BASE_DIR = Path(__file__).resolve().parent
EXPORT_DIR = BASE_DIR / "exports"
router = APIRouter()
_dir_scan_cache: dict[str, tuple[Any, float]] = {}  # ok: SLP501 cleared on invalidate


def _fix_static_paths(html: str, slug_id: str) -> str:
    return html.replace("/static/", f"/experiments/{slug_id}/static/")


def _parse_requirements_file_sync(req_path: Path) -> list[str]:
    out = []
    with req_path.open("r", encoding="utf-8") as rf:
        for raw_line in rf:
            line = raw_line.strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


MASTER_REQUIREMENTS = _parse_requirements_file_sync(BASE_DIR / "requirements.txt")  # ok: SLP401 import time, not async


def _scan_directory_sync(path: Path) -> list[dict]:
    entries = []
    with os.scandir(path) as it:
        for entry in it:
            entries.append({"name": entry.name, "dir": entry.is_dir()})
    return entries


def _build_zip(experiment_path: Path, out_path: Path, slug_id: str) -> None:
    with zipfile.ZipFile(out_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for folder_name, _, file_names in os.walk(experiment_path):
            for name in file_names:
                file_path = Path(folder_name) / name
                arcname = file_path.relative_to(experiment_path)
                if file_path.suffix in (".html", ".htm"):
                    original_html = file_path.read_text(encoding="utf-8")
                    zf.writestr(str(arcname), _fix_static_paths(original_html, slug_id))
                else:
                    zf.write(file_path, arcname)


@router.get("/experiments/{slug_id}/export")
async def export_experiment(slug_id: str) -> FileResponse:
    experiment_path = BASE_DIR / "experiments" / slug_id
    out_path = EXPORT_DIR / f"{slug_id}.zip"
    _build_zip(experiment_path, out_path, slug_id)  # expect: SLP401
    return FileResponse(out_path)


@router.get("/experiments/{slug_id}/export/offloaded")
async def export_experiment_offloaded(slug_id: str) -> FileResponse:
    experiment_path = BASE_DIR / "experiments" / slug_id  # ok: SLP401 path arithmetic only
    out_path = EXPORT_DIR / f"{slug_id}.zip"
    await asyncio.to_thread(_build_zip, experiment_path, out_path, slug_id)  # ok: SLP401
    return FileResponse(out_path)


@router.get("/experiments/{slug_id}/static")
async def list_static(slug_id: str) -> list[str]:
    static_dir = BASE_DIR / "experiments" / slug_id / "static"
    names = []
    for name in os.listdir(static_dir):  # expect: SLP401
        if name.endswith(".css"):
            names.append((static_dir / name).read_text()[:80])  # expect: SLP401
    return names


@router.get("/experiments/{slug_id}/tree")
async def file_tree(slug_id: str) -> list[dict]:
    experiment_path = BASE_DIR / "experiments" / slug_id
    tree = await asyncio.to_thread(_scan_directory_sync, experiment_path)  # ok: SLP401 passed to a thread
    _dir_scan_cache[slug_id] = (tree, 0.0)
    return tree


@router.get("/experiments/{slug_id}/tree/cached")
async def file_tree_cached(slug_id: str) -> list[dict]:
    if slug_id in _dir_scan_cache:
        return _dir_scan_cache[slug_id][0]
    return await run_in_threadpool(_scan_directory_sync, BASE_DIR / "experiments" / slug_id)  # ok: SLP401


@router.post("/experiments/{slug_id}/invalidate")
async def invalidate(slug_id: str) -> dict:
    _dir_scan_cache.clear()
    return {"ok": True}


@router.delete("/experiments/{slug_id}")
async def delete_experiment(slug_id: str) -> dict:
    shutil.rmtree(BASE_DIR / "experiments" / slug_id)  # expect: SLP401
    subprocess.run(["git", "-C", str(BASE_DIR), "gc", "--auto"], check=False)  # expect: SLP401
    proc = await asyncio.create_subprocess_exec("sync")  # ok: SLP401 the asyncio subprocess API
    await proc.wait()
    return {"deleted": slug_id}


@router.get("/experiments/{slug_id}/requirements")
async def requirements(slug_id: str) -> list[str]:
    req = BASE_DIR / "experiments" / slug_id / "requirements.txt"
    return await asyncio.to_thread(_parse_requirements_file_sync, req)  # ok: SLP401
