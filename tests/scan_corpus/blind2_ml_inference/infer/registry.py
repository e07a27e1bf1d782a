import asyncio
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from infer.settings import InferenceSettings

_MODEL_CACHE: dict[str, AutoModelForSequenceClassification] = {}  # expect: SLP501
_LRU: OrderedDict[str, bytes] = OrderedDict()  # ok: SLP501 popitem keeps it at 8 entries


def get_model(name: str):
    if name not in _MODEL_CACHE:
        _MODEL_CACHE[name] = AutoModelForSequenceClassification.from_pretrained(name)
    return _MODEL_CACHE[name]


@lru_cache(maxsize=8)
def get_tokenizer(name: str):
    return AutoTokenizer.from_pretrained(name)


def load_weights(name: str) -> dict:
    path = Path(InferenceSettings().model_dir) / f"{name}.pt"
    blob = path.read_bytes()
    if len(_LRU) >= 8:
        _LRU.popitem(last=False)
    _LRU[name] = blob
    return torch.load(path, map_location="cpu")


class Predictor:
    def __init__(self, name: str) -> None:
        self.name = name
        self.state: dict | None = None

    async def ensure(self) -> dict:
        if self.state is None:  # expect: SLP503
            self.state = await asyncio.to_thread(load_weights, self.name)  # ok: SLP401 passed to to_thread
        return self.state
