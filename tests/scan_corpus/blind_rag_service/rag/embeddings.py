import asyncio
import hashlib

import tiktoken

from rag.clients import EMBED_MODEL, openai_client

_EMBED_CACHE: dict[str, list[float]] = {}  # expect: SLP501
_TOKEN_COUNTS: dict[str, int] = {}  # ok: SLP501 cleared when it grows past 10,000 entries

EMBED_LIMIT = asyncio.Semaphore(16)
_ENC = tiktoken.get_encoding("cl100k_base")


async def embed(text: str) -> list[float]:
    key = hashlib.sha1(text.encode()).hexdigest()
    if key not in _EMBED_CACHE:  # expect: SLP503
        response = await openai_client().embeddings.create(model=EMBED_MODEL, input=text)
        _EMBED_CACHE[key] = response.data[0].embedding
    return _EMBED_CACHE[key]


async def embed_bounded(text: str) -> list[float]:
    async with EMBED_LIMIT:
        return await embed(text)


async def embed_all(texts: list[str]) -> list[list[float]]:
    return await asyncio.gather(*[embed(t) for t in texts])  # expect: SLP302


async def embed_all_bounded(texts: list[str]) -> list[list[float]]:
    return await asyncio.gather(*(embed_bounded(t) for t in texts))  # ok: SLP302 bounded by the semaphore inside


async def embed_batch(texts: list[str]) -> list[list[float]]:
    response = await openai_client().embeddings.create(model=EMBED_MODEL, input=texts)
    return [d.embedding for d in response.data]


def count_tokens(text: str) -> int:
    if text in _TOKEN_COUNTS:
        return _TOKEN_COUNTS[text]
    if len(_TOKEN_COUNTS) > 10_000:
        _TOKEN_COUNTS.clear()
    _TOKEN_COUNTS[text] = len(_ENC.encode(text))
    return _TOKEN_COUNTS[text]


def chunk(text: str, max_tokens: int = 400) -> list[str]:
    tokens = _ENC.encode(text)
    return [_ENC.decode(tokens[i : i + max_tokens]) for i in range(0, len(tokens), max_tokens)]


def chunk_documents(docs: list[dict], max_tokens: int = 400) -> list[tuple[str, str]]:
    out = []
    for doc in docs:
        enc = tiktoken.get_encoding("cl100k_base")  # expect: SLP103
        tokens = enc.encode(doc["text"])
        for i in range(0, len(tokens), max_tokens):
            out.append((enc.decode(tokens[i : i + max_tokens]), doc["source"]))
    return out
