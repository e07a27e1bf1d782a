import asyncio
import json

import tiktoken
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from transformers import AutoTokenizer

from infer.llm import shared_async
from infer.registry import Predictor, get_model, get_tokenizer, load_weights
from infer.settings import InferenceSettings
from openai import AsyncOpenAI

app = FastAPI()
settings = InferenceSettings()
_predictors: dict[str, Predictor] = {}  # expect: SLP501


class ClassifyRequest(BaseModel):
    texts: list[str]
    model: str | None = None


class ChunkRequest(BaseModel):
    documents: list[str]
    model: str
    size: int = 256


@app.post("/classify")
async def classify(req: ClassifyRequest):
    with open(settings.labels_path) as fh:  # expect: SLP401
        labels = json.load(fh)
    name = req.model or settings.default_model
    classes = await run_in_threadpool(_run_model, name, req.texts)  # ok: SLP401 model runs in the threadpool
    return [labels[str(c)] for c in classes]


def _run_model(name: str, texts: list[str]) -> list[int]:
    tokenizer = get_tokenizer(name)
    model = get_model(name)
    batch = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    return [int(i) for i in model(**batch).logits.argmax(-1)]


@app.post("/chunk")
def chunk(req: ChunkRequest):
    out = []
    for doc in req.documents:
        enc = tiktoken.get_encoding("cl100k_base")  # expect: SLP103
        tok = AutoTokenizer.from_pretrained(req.model)  # expect: SLP103
        ids = tok(doc)["input_ids"]
        out.append({"tokens": len(enc.encode(doc)), "chunks": [ids[i:i + req.size] for i in range(0, len(ids), req.size)]})
    return out


@app.post("/chunk/fast")
def chunk_fast(req: ChunkRequest):
    tok = get_tokenizer(req.model)
    out = []
    for doc in req.documents:
        tok_again = get_tokenizer(req.model)  # ok: SLP103 lru_cache makes this a dict lookup
        out.append(len(tok_again(doc)["input_ids"]))
    return out


@app.post("/embed")
async def embed(texts: list[str]):
    client = AsyncOpenAI()  # expect: SLP102
    vectors = []
    for text in texts:
        resp = await client.embeddings.create(model=settings.embed_model, input=text)  # expect: SLP301
        vectors.append(resp.data[0].embedding)
    return vectors


@app.post("/embed/batch")
async def embed_batch(texts: list[str]):
    client = shared_async()
    resp = await client.embeddings.create(model=settings.embed_model, input=texts)  # ok: SLP301 one call
    return [d.embedding for d in resp.data]


@app.post("/reload/{name}")
async def reload(name: str):
    state = load_weights(name)  # expect: SLP401
    return {"keys": len(state)}


@app.post("/reload-safe/{name}")
async def reload_safe(name: str):
    state = await run_in_threadpool(load_weights, name)  # ok: SLP401 run in threadpool
    return {"keys": len(state)}


@app.post("/predict/{name}")
async def predict(name: str, texts: list[str]):
    predictor = _predictors.setdefault(name, Predictor(name))
    state = await predictor.ensure()
    return {"model": name, "n": len(texts), "params": len(state)}


@app.post("/moderate")
async def moderate(texts: list[str]):
    client = shared_async()
    results = await asyncio.gather(*[client.moderations.create(input=t) for t in texts])  # expect: SLP302
    return [r.results[0].flagged for r in results]
