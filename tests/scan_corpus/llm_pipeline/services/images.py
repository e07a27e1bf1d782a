import asyncio
import logging
from pathlib import Path

import httpx
import requests
from openai import AsyncOpenAI

log = logging.getLogger(__name__)
client = AsyncOpenAI()
OUT_DIR = Path("/data/images")
MAX_CONCURRENT_IMAGES = 4
_image_sem = asyncio.Semaphore(MAX_CONCURRENT_IMAGES)
_background: set[asyncio.Task] = set()


async def log_usage(usage) -> None:
    log.info("tokens: %s", usage)


async def generate_image(prompt: str, name: str) -> Path:
    result = await client.images.generate(model="dall-e-3", prompt=prompt, size="1024x1024")
    url = result.data[0].url
    img = requests.get(url, timeout=30).content  # expect: SLP401
    out = OUT_DIR / f"{name}.png"
    out.write_bytes(img)  # expect: SLP401
    asyncio.create_task(log_usage(result))  # expect: SLP502
    return out


async def generate_image_async(prompt: str, name: str, http: httpx.AsyncClient) -> Path:
    result = await client.images.generate(model="dall-e-3", prompt=prompt, size="1024x1024")
    img = (await http.get(result.data[0].url)).content
    out = OUT_DIR / f"{name}.png"
    await asyncio.to_thread(out.write_bytes, img)  # ok: SLP401
    task = asyncio.create_task(log_usage(result))  # ok: SLP502 kept
    _background.add(task)
    task.add_done_callback(_background.discard)
    return out


async def bounded_generate(prompt: str, name: str, http: httpx.AsyncClient) -> Path:
    async with _image_sem:
        return await generate_image_async(prompt, name, http)


async def generate_all(prompts: dict[str, str]) -> list[Path]:
    return await asyncio.gather(*[generate_image(p, n) for n, p in prompts.items()])  # expect: SLP302


async def generate_all_bounded(prompts: dict[str, str], http: httpx.AsyncClient) -> list[Path]:
    return await asyncio.gather(*[bounded_generate(p, n, http) for n, p in prompts.items()])  # ok: SLP302 bounded inside


async def generate_cover_and_icon(title: str, http: httpx.AsyncClient) -> tuple[Path, Path]:
    return await asyncio.gather(generate_image_async(title, "cover", http), generate_image_async(title, "icon", http))  # ok: SLP302


async def generate_fixed(title: str, http: httpx.AsyncClient) -> list[Path]:
    return await asyncio.gather(*[generate_image_async(title, n, http) for n in ("cover", "icon", "banner")])  # ok: SLP302 a literal tuple


async def generate_sequential(prompts: list[str], http: httpx.AsyncClient) -> list[Path]:
    tasks = []
    for i, prompt in enumerate(prompts):
        tasks.append(generate_image_async(prompt, f"img{i}", http))
    return await asyncio.gather(*tasks)  # expect: SLP302
