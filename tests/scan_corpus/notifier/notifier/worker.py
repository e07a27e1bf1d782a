import asyncio
import logging

from notifier.background import audit, flush_metrics
from notifier.scheduler import Scheduler

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self._runner: asyncio.Task | None = None
        self._children: list[asyncio.Task] = []

    async def start(self) -> None:
        self._runner = asyncio.create_task(self._run())  # ok: SLP502 stored on self
        self._children.append(asyncio.create_task(flush_metrics()))  # ok: SLP502 kept in a list

    async def _run(self) -> None:
        queue: asyncio.Queue = asyncio.Queue()
        while True:
            event = await queue.get()
            self.scheduler.create_task(event["name"])  # ok: SLP502 not asyncio
            asyncio.create_task(audit(event))  # expect: SLP502

    async def stop(self) -> None:
        if self._runner:
            self._runner.cancel()
        for child in self._children:
            child.cancel()
