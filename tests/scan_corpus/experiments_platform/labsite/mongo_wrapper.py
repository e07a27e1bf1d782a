import asyncio
import logging
from collections import OrderedDict

from motor.motor_asyncio import AsyncIOMotorCollection, AsyncIOMotorDatabase

log = logging.getLogger(__name__)
MAX_PATTERNS = 1000


class AutoIndexManager:
    def __init__(self, collection: AsyncIOMotorCollection) -> None:
        self.collection = collection
        self._query_counts: dict[str, int] = {}  # expect: SLP501
        self._indexes_ready = False
        self._creating: dict[str, asyncio.Task] = {}  # ok: SLP501 not named like a cache
        self._pending: set[asyncio.Task] = set()

    async def ensure_index_for_query(self, fields: list[str]) -> None:
        pattern_key = "_".join(fields)
        self._query_counts[pattern_key] = self._query_counts.get(pattern_key, 0) + 1
        if self._query_counts[pattern_key] == 10 and pattern_key not in self._creating:  # ok: SLP503 no await in the body
            task = asyncio.create_task(self.collection.create_index(fields))  # ok: SLP502 kept in a dict and a set
            self._creating[pattern_key] = task
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def ensure_base_indexes(self) -> None:
        if not self._indexes_ready:  # expect: SLP503
            await self.collection.create_index("experiment_id")
            await self.collection.create_index([("created_at", -1)])
            self._indexes_ready = True


class BoundedIndexManager:
    def __init__(self, collection: AsyncIOMotorCollection) -> None:
        self.collection = collection
        self._query_counts: OrderedDict[str, int] = OrderedDict()  # ok: SLP501 popitem bounds it

    def record(self, pattern_key: str) -> None:
        if pattern_key in self._query_counts:
            self._query_counts.move_to_end(pattern_key)
            self._query_counts[pattern_key] += 1
        else:
            if len(self._query_counts) >= MAX_PATTERNS:
                self._query_counts.popitem(last=False)
            self._query_counts[pattern_key] = 1


class ScopedMongoWrapper:
    _experiment_id_index_cache: dict[str, bool] = {}  # expect: SLP501
    _index_lock = asyncio.Lock()

    def __init__(self, db: AsyncIOMotorDatabase, experiment_id: str) -> None:
        self._db = db
        self._experiment_id = experiment_id

    async def collection(self, name: str) -> AsyncIOMotorCollection:
        real = self._db[name]

        async def _safe_experiment_id_index() -> None:
            try:
                await real.create_index("experiment_id")
                ScopedMongoWrapper._experiment_id_index_cache[name] = True
            except Exception:
                log.exception("index creation failed for %s", name)

        if name not in ScopedMongoWrapper._experiment_id_index_cache:  # ok: SLP503 assigned before any await
            ScopedMongoWrapper._experiment_id_index_cache[name] = False
            asyncio.create_task(_safe_experiment_id_index())  # expect: SLP502
        return real

    async def collection_locked(self, name: str) -> AsyncIOMotorCollection:
        real = self._db[name]
        async with ScopedMongoWrapper._index_lock:
            if not ScopedMongoWrapper._experiment_id_index_cache.get(name):  # ok: SLP503 under the lock
                await real.create_index("experiment_id")
                ScopedMongoWrapper._experiment_id_index_cache[name] = True
        return real
