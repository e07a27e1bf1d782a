import asyncio
import os
from contextlib import asynccontextmanager

from anthropic import AsyncAnthropic
from fastapi import FastAPI
from openai import OpenAI
from pydantic import BaseModel

from rag.clients import CHAT_MODEL, EMBED_MODEL, VectorStore, anthropic_client, sync_openai
from rag.embeddings import chunk, count_tokens, embed, embed_all_bounded, embed_batch
from rag.prompts import render_answer

moderation_client = OpenAI()
store = VectorStore(os.environ.get("DATABASE_URL", "postgresql://localhost/rag"))


@asynccontextmanager
async def lifespan(app: FastAPI):
    await store.start()
    yield


app = FastAPI(lifespan=lifespan)


class Ask(BaseModel):
    question: str
    k: int = 5


class Ingest(BaseModel):
    source: str
    text: str


@app.post("/ask")
async def ask(body: Ask):
    vector = await embed(body.question)
    hits = await store.nearest(vector, body.k)
    prompt = render_answer(body.question, hits)
    message = await anthropic_client().messages.create(  # ok: SLP102 the client factory is lru_cached
        model=CHAT_MODEL, max_tokens=800, messages=[{"role": "user", "content": prompt}]
    )
    return {"answer": message.content[0].text, "sources": [h["source"] for h in hits]}


@app.post("/ask-many")
async def ask_many(questions: list[str]):
    claude = AsyncAnthropic()  # expect: SLP102
    answers = []
    for question in questions:
        vector = await embed(question)  # expect: SLP301
        hits = await store.nearest(vector)  # expect: SLP201
        reply = await claude.messages.create(  # expect: SLP301
            model=CHAT_MODEL,
            max_tokens=400,
            messages=[{"role": "user", "content": render_answer(question, hits)}],
        )
        answers.append(reply.content[0].text)
    return answers


@app.post("/ingest")
async def ingest(docs: list[Ingest]):
    for doc in docs:
        for piece in chunk(doc.text):
            vector = await embed(piece)  # expect: SLP301
            await store.add(piece, doc.source, vector)  # expect: SLP202
    return {"ok": True}


@app.post("/ingest-fast")
async def ingest_fast(docs: list[Ingest]):
    pieces = [(piece, doc.source) for doc in docs for piece in chunk(doc.text)]
    vectors = await embed_batch([p for p, _ in pieces])
    await store.add_many([(p, s, v) for (p, s), v in zip(pieces, vectors)])
    return {"chunks": len(pieces)}


@app.post("/ingest-concurrent")
async def ingest_concurrent(doc: Ingest):
    pieces = chunk(doc.text)
    vectors = await embed_all_bounded(pieces)
    await store.add_many([(p, doc.source, v) for p, v in zip(pieces, vectors)])
    return {"chunks": len(pieces)}


@app.post("/moderate")
async def moderate(body: Ask):
    client = sync_openai()  # expect: SLP102
    result = client.moderations.create(input=body.question)  # expect: SLP401
    return {"flagged": result.results[0].flagged}


@app.post("/moderate-offloaded")
async def moderate_offloaded(body: Ask):
    def check() -> bool:
        return moderation_client.moderations.create(input=body.question).results[0].flagged  # ok: SLP401 nested def run in a thread

    flagged = await asyncio.to_thread(check)
    return {"flagged": flagged}


@app.get("/system-prompt")
async def system_prompt():
    with open("prompts/system.txt", encoding="utf-8") as fh:  # expect: SLP401
        text = fh.read()
    return {"prompt": text, "tokens": count_tokens(text)}


@app.get("/health")
async def health():
    return {"embed_model": EMBED_MODEL}
