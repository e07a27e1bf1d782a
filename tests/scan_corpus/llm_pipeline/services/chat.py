import asyncio
import os

import anthropic
import tiktoken
from openai import AsyncOpenAI, OpenAI

import slipstream as ss

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
MAX_CONCURRENT_OPENAI = int(os.environ.get("MAX_CONCURRENT_OPENAI", "2"))
client = AsyncOpenAI()
claude = anthropic.AsyncAnthropic()
_sem = asyncio.Semaphore(MAX_CONCURRENT_OPENAI)
ENCODING = tiktoken.get_encoding("cl100k_base")


def truncate(enc, text: str, limit: int = 3000) -> str:
    return enc.decode(enc.encode(text)[:limit])


async def summarize_scenes(scenes: list[str]) -> list[str]:
    out = []
    for scene in scenes:
        enc = tiktoken.get_encoding("cl100k_base")  # expect: SLP103
        prompt = truncate(enc, scene)
        resp = await client.chat.completions.create(  # expect: SLP301
            model=MODEL,
            messages=[{"role": "user", "content": f"Summarize:\n{prompt}"}],
        )
        out.append(resp.choices[0].message.content)
    return out


async def describe_personas(personas: list[dict]) -> list[str]:
    texts = []
    for persona in personas:
        msg = await claude.messages.create(model="claude-3-5-haiku-latest", max_tokens=400, messages=[{"role": "user", "content": persona["bio"]}])  # expect: SLP301
        texts.append(msg.content[0].text)
    return texts


async def refine_summary(chunks: list[str]) -> str:
    summary = ""
    for chunk in chunks:
        resp = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"{summary}\n---\n{chunk}"}])  # ok: SLP301 each step needs the previous summary
        summary = resp.choices[0].message.content
    return summary


async def first_good_answer(prompts: list[str]) -> str | None:
    for prompt in prompts:
        resp = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}])  # ok: SLP301 stops at the first good answer
        answer = resp.choices[0].message.content
        if answer and "I cannot" not in answer:
            return answer
    return None


async def classify_with_retry(text: str) -> str:
    for attempt in range(3):
        try:
            resp = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])  # ok: SLP301 retry
            return resp.choices[0].message.content
        except Exception:
            await asyncio.sleep(2**attempt)
    raise RuntimeError("classification failed")


async def two_models(text: str) -> tuple[str, str]:
    answers = []
    for model in ("gpt-4o-mini", "gpt-4o"):
        resp = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])  # ok: SLP301 a literal pair
        answers.append(resp.choices[0].message.content)
    return answers[0], answers[1]


async def summarize_locked(scenes: list[str]) -> list[str]:
    out = []
    async with _sem:
        for scene in scenes:
            resp = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": scene}])  # ok: SLP301 under a semaphore
            out.append(resp.choices[0].message.content)
    return out


async def count_tokens(texts: list[str]) -> list[int]:
    return [len(ENCODING.encode(t)) for t in texts]  # ok: SLP103 the encoding is built once


async def describe(item: dict) -> str:
    llm = AsyncOpenAI()  # expect: SLP102
    resp = await llm.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": item["text"]}])
    return resp.choices[0].message.content


async def describe_shared(item: dict) -> str:
    resp = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": item["text"]}])
    return resp.choices[0].message.content


async def describe_all(items: list[dict]) -> list[str]:
    results = await ss.map(describe, items, concurrency=4)
    shared = await ss.map(describe_shared, items, concurrency=4)
    return list(results) + list(shared)


def offline_batch(docs: list[str], api_key: str) -> list[str]:
    out = []
    for doc in docs:
        llm = OpenAI(api_key=api_key)  # expect: SLP101
        out.append(llm.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": doc}]).choices[0].message.content)
    return out
