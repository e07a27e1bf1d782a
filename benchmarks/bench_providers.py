"""Seed 000's annotation run: clients created per asset x schema, against the registry.

8 assets x 2 schemas. Creating the storage client costs 200 ms (DNS, TLS, auth, bucket check)
and the classification client 100 ms; each operation (read the asset, classify it) costs 50 ms.

Contenders, all running the 16 operations one after another as the seed did:
  naive          both clients created for every asset x schema (the seed's "before");
  hand_rolled    the seed's fix: a module dict keyed by id(settings) (rebuilt settings miss it);
  registry       ss.Registry keyed by the settings' fingerprint.
And the same registry with the 16 operations run by ss.map at concurrency 16 (registry_map_s),
plus the hand-rolled dict under 16 concurrent first calls (its duplicate creations).

Figures (last line, JSON): naive_s, registry_s, creations_naive, creations_registry (per kind),
hand_rolled_s, hand_rolled_creations, registry_map_s, hand_rolled_concurrent_creations,
ideal_s (one creation of each + 16 operations), speedup.

Run: python benchmarks/bench_providers.py --quick
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from _common import parse_args, report

import slipstream as ss

STORAGE_S, LLM_S, OP_S = 0.200, 0.100, 0.050
ASSETS, SCHEMAS = 8, 2


@dataclasses.dataclass(frozen=True)
class StorageSettings:
    endpoint: str = "http://minio:9000"
    bucket: str = "assets"


@dataclasses.dataclass(frozen=True)
class LLMSettings:
    model: str = "classifier-1"


class Counts:
    def __init__(self) -> None:
        self.storage = 0
        self.llm = 0


async def make_storage(counts: Counts, settings: StorageSettings) -> Any:
    counts.storage += 1
    await asyncio.sleep(STORAGE_S)
    return object()


async def make_llm(counts: Counts, settings: LLMSettings) -> Any:
    counts.llm += 1
    await asyncio.sleep(LLM_S)
    return object()


async def operate(storage: Any, llm: Any, asset: int, schema: int) -> tuple[int, int]:
    await asyncio.sleep(OP_S)
    return asset, schema


def pairs() -> list[tuple[int, int]]:
    return [(a, s) for a in range(ASSETS) for s in range(SCHEMAS)]


async def naive(counts: Counts) -> None:
    for asset, schema in pairs():
        storage = await make_storage(counts, StorageSettings())
        llm = await make_llm(counts, LLMSettings())
        await operate(storage, llm, asset, schema)


_PROVIDERS: dict[int, Any] = {}


async def hand_rolled_get(counts: Counts, kind: str, settings: Any) -> Any:
    """Seed 000's fix: cache by id(settings), no lock, nothing closed."""
    key = id(settings)
    if key not in _PROVIDERS:  # noqa: SLP503 - seed 004's race, measured on purpose
        maker = make_storage if kind == "storage" else make_llm
        _PROVIDERS[key] = await maker(counts, settings)
    return _PROVIDERS[key]


async def hand_rolled(counts: Counts) -> None:
    _PROVIDERS.clear()
    for asset, schema in pairs():
        # settings are rebuilt per request in a typical app (from config or a request body)
        storage = await hand_rolled_get(counts, "storage", StorageSettings())
        llm = await hand_rolled_get(counts, "llm", LLMSettings())
        await operate(storage, llm, asset, schema)


async def hand_rolled_concurrent(counts: Counts) -> None:
    _PROVIDERS.clear()
    storage_settings, llm_settings = StorageSettings(), LLMSettings()  # one object: ids match

    async def one(pair: tuple[int, int]) -> None:
        storage = await hand_rolled_get(counts, "storage", storage_settings)
        llm = await hand_rolled_get(counts, "llm", llm_settings)
        await operate(storage, llm, *pair)

    await asyncio.gather(*(one(p) for p in pairs()))


async def with_registry(counts: Counts) -> None:
    async with ss.Registry() as registry:
        for asset, schema in pairs():
            storage = await registry.get(
                "storage", lambda s: make_storage(counts, s), StorageSettings()
            )
            llm = await registry.get("llm", lambda s: make_llm(counts, s), LLMSettings())
            await operate(storage, llm, asset, schema)


async def with_registry_map(counts: Counts) -> None:
    async with ss.Registry() as registry:

        async def one(pair: tuple[int, int]) -> tuple[int, int]:
            storage = await registry.get(
                "storage", lambda s: make_storage(counts, s), StorageSettings()
            )
            llm = await registry.get("llm", lambda s: make_llm(counts, s), LLMSettings())
            return await operate(storage, llm, *pair)

        results = await ss.map(one, pairs(), concurrency=16)
        results.raise_failures()


def timed(run) -> tuple[float, Counts]:  # type: ignore[no-untyped-def]
    counts = Counts()
    t0 = time.perf_counter()
    asyncio.run(run(counts))
    return time.perf_counter() - t0, counts


def main() -> None:
    parse_args(__doc__ or "")
    n = ASSETS * SCHEMAS
    naive_s, naive_counts = timed(naive)
    hand_s, hand_counts = timed(hand_rolled)
    registry_s, registry_counts = timed(with_registry)
    map_s, map_counts = timed(with_registry_map)
    _, concurrent_counts = timed(hand_rolled_concurrent)
    ideal = STORAGE_S + LLM_S + n * OP_S
    report(
        {
            "naive_s": naive_s,
            "creations_naive": naive_counts.storage,
            "creations_naive_llm": naive_counts.llm,
            "hand_rolled_s": hand_s,
            "hand_rolled_creations": hand_counts.storage,
            "registry_s": registry_s,
            "creations_registry": registry_counts.storage,
            "creations_registry_llm": registry_counts.llm,
            "ideal_s": ideal,
            "registry_over_ideal": registry_s / ideal,
            "speedup": naive_s / registry_s,
            "registry_map_s": map_s,
            "creations_registry_map": map_counts.storage + map_counts.llm,
            "hand_rolled_concurrent_creations": concurrent_counts.storage + concurrent_counts.llm,
        }
    )


if __name__ == "__main__":
    main()
