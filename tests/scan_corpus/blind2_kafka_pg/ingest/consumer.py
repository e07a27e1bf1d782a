import asyncio
import logging
from collections import Counter

from aiokafka import AIOKafkaConsumer

from ingest.codec import decode
from ingest.enrich import Enricher
from ingest.sink import EventSink

log = logging.getLogger(__name__)


class Ingestor:
    def __init__(self, consumer: AIOKafkaConsumer, sink: EventSink, enricher: Enricher) -> None:
        self.consumer = consumer
        self.sink = sink
        self.enricher = enricher
        self._flusher: asyncio.Task | None = None
        self._counts: Counter[int] = Counter()

    async def start(self) -> None:
        await self.consumer.start()
        self._flusher = asyncio.create_task(self._flush_counters())  # ok: SLP502 kept on self
        asyncio.ensure_future(self._report_lag())  # expect: SLP502

    async def run_batches(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=500, max_records=500)
            for tp, messages in batches.items():
                for msg in messages:
                    event = decode(msg.value)
                    self._counts[event.user_id] += 1
                    await self.sink.write_event(event)  # expect: SLP202
                await self.consumer.commit()  # ok: SLP203 Kafka offset commit, not a DB transaction

    async def run_batched_writes(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=1000, max_records=1000)
            events = [decode(m.value) for msgs in batches.values() for m in msgs]
            if events:
                await self.sink.write_many(events)  # ok: SLP202 one executemany per poll
                await self.consumer.commit()

    async def run_streaming(self) -> None:
        async for msg in self.consumer:
            await self.sink.write_event(decode(msg.value))  # expect: SLP202

    async def _flush_counters(self) -> None:
        pool = await self.sink.get_pool_safe()
        while True:
            await asyncio.sleep(5)
            snapshot, self._counts = self._counts, Counter()
            async with pool.acquire() as conn:
                await self.sink.write_counters(conn, dict(snapshot))

    async def _report_lag(self) -> None:
        while True:
            for tp in self.consumer.assignment():
                highwater = self.consumer.highwater(tp)
                position = await self.consumer.position(tp)
                log.info("lag %s: %s", tp, (highwater or 0) - position)
            await asyncio.sleep(30)
