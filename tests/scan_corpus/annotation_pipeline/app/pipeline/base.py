"""Seed 004's gene annotation source: per-gene commits, sync DB work on the event loop."""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.pipeline.cache_service import CacheService

log = logging.getLogger(__name__)


class GeneAnnotation:
    def __init__(self, gene_id: int, source: str, payload: dict) -> None:
        self.gene_id = gene_id
        self.source = source
        self.payload = payload


class AnnotationSource:
    source_name = "hgnc"

    def __init__(self, session: Session, cache: CacheService) -> None:
        self.session = session
        self.cache = cache
        self.http = httpx.AsyncClient(base_url="https://rest.genenames.org", timeout=30)
        self._executor = ThreadPoolExecutor(max_workers=2)

    async def fetch_annotation(self, symbol: str) -> dict:
        response = await self.http.get(f"/fetch/symbol/{symbol}")
        response.raise_for_status()
        return response.json()

    async def update_annotations(self, genes: list) -> int:
        updated = 0
        for gene in genes:
            payload = await self.fetch_annotation(gene.symbol)  # expect: SLP301
            self.session.add(GeneAnnotation(gene.id, self.source_name, payload))  # ok: SLP202, SLP401 add is not I/O
            self.session.commit()  # expect: SLP203, SLP401
            updated += 1
        return updated

    def _store_batch_sync(self, rows: list[tuple[int, dict]]) -> None:
        for i, (gene_id, payload) in enumerate(rows, 1):
            self.session.add(GeneAnnotation(gene_id, self.source_name, payload))
            if i % 100 == 0:
                self.session.commit()  # ok: SLP203 a commit every 100 genes
        self.session.commit()

    async def update_annotations_batched(self, genes: list) -> int:
        rows = []
        for gene in genes:
            rows.append((gene.id, await self.fetch_annotation(gene.symbol)))  # expect: SLP301
        await asyncio.to_thread(self._store_batch_sync, rows)  # ok: SLP401
        return len(rows)

    async def update_annotations_throttled(self, genes: list) -> list[dict]:
        out = []
        for gene in genes:
            out.append(await self.fetch_annotation(gene.symbol))  # ok: SLP301 throttled on purpose
            await asyncio.sleep(0.34)
        return out

    async def clear_cache_blocking(self) -> int:
        return self.cache.clear_namespace_sync("annotations")  # expect: SLP401

    async def clear_cache(self) -> int:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.cache.clear_namespace_sync, "annotations")  # ok: SLP401

    def _refresh_view_sync(self) -> None:
        self.session.execute(text("REFRESH MATERIALIZED VIEW CONCURRENTLY gene_summary"))
        self.session.commit()

    async def refresh_views_blocking(self) -> None:
        self.session.execute(text("REFRESH MATERIALIZED VIEW CONCURRENTLY gene_summary"))  # expect: SLP401
        await asyncio.sleep(0)

    async def refresh_views(self) -> None:
        await asyncio.to_thread(self._refresh_view_sync)  # ok: SLP401

    async def ping(self) -> None:
        await asyncio.to_thread(lambda: self.session.execute(text("SELECT 1")))  # ok: SLP401 in a thread
