import asyncio

import httpx

LLAMA_URL = "https://api.cloud.llamaindex.ai/api/parsing"
MAX_CONCURRENT_LLAMAPARSE = 3


async def upload(http: httpx.AsyncClient, path: str, data: bytes) -> str:
    resp = await http.post(f"{LLAMA_URL}/upload", files={"file": (path, data)})
    return resp.json()["id"]


async def wait_for_job(http: httpx.AsyncClient, job_id: str) -> dict:
    delay = 1.0
    while True:
        status = (await http.get(f"{LLAMA_URL}/job/{job_id}")).json()  # ok: SLP301 polling in a while loop
        if status["status"] == "SUCCESS":
            return status
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30)


async def fetch_pages(http: httpx.AsyncClient, job_id: str, max_pages: int) -> list[dict]:
    pages = []
    cursor = None
    for _ in range(max_pages):
        resp = await http.get(f"{LLAMA_URL}/job/{job_id}/result", params={"cursor": cursor})  # ok: SLP301 the cursor carries over
        body = resp.json()
        pages.extend(body["pages"])
        cursor = body.get("next")
        if not cursor:
            break
    return pages


async def parse_all(files: dict[str, bytes]) -> list[dict]:
    sem = asyncio.Semaphore(MAX_CONCURRENT_LLAMAPARSE)
    async with httpx.AsyncClient(timeout=60) as http:

        async def one(path: str, data: bytes) -> dict:
            async with sem:
                job = await upload(http, path, data)
                return await wait_for_job(http, job)

        results = await asyncio.gather(*[one(p, d) for p, d in files.items()])  # ok: SLP302 bounded by the semaphore
        uploaded = []
        for path, data in files.items():
            uploaded.append(await upload(http, path, data))  # expect: SLP301
        running = [asyncio.create_task(wait_for_job(http, j)) for j in uploaded]  # ok: SLP502 kept in a list
        for task in running:
            results.append(await task)  # ok: SLP301 tasks already run concurrently
    return results
