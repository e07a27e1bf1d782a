from aiokafka import AIOKafkaConsumer
from sqlalchemy.ext.asyncio import AsyncSession

from reports.deps import Session
from reports.models import Event


class EventSink:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _save(self, event: Event) -> None:
        self.session.add(event)
        await self.session.commit()

    async def consume(self, consumer: AIOKafkaConsumer) -> None:
        async for msg in consumer:
            self.session.add(Event(payload=msg.value))
            await self.session.commit()  # expect: SLP203

    async def replay(self, events: list[Event]) -> None:
        for event in events:
            await self._save(event)  # expect: SLP203

    async def replay_batched(self, events: list[Event]) -> None:
        for event in events:
            self.session.add(event)  # ok: SLP202
        await self.session.commit()  # ok: SLP203


async def replay_all(batches: list[list[Event]]) -> None:
    async with Session() as session:
        for batch in batches:
            session.add_all(batch)
            await session.flush()  # expect: SLP202
            await session.commit()  # expect: SLP203
