import csv
import json
import sys

from infer.llm import summarize
from infer.registry import get_model, get_tokenizer
from infer.settings import InferenceSettings


def score_file(path: str, out_path: str) -> None:
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    results = []
    for row in rows:
        cfg = InferenceSettings()  # expect: SLP103
        tokenizer = get_tokenizer(cfg.default_model)
        model = get_model(cfg.default_model)
        batch = tokenizer([row["text"]], truncation=True, max_length=cfg.max_tokens, return_tensors="pt")
        results.append({"id": row["id"], "label": int(model(**batch).logits.argmax(-1)[0])})
    with open(out_path, "w") as fh:
        json.dump(results, fh)


def summarize_file(path: str) -> list[str]:
    with open(path) as fh:
        docs = [line.strip() for line in fh if line.strip()]
    return [summarize(doc) for doc in docs]  # expect: SLP101


if __name__ == "__main__":
    score_file(sys.argv[1], sys.argv[2])
