"""Micro-batching: concurrent requests for one model run through it together.

A request's inputs wait in a per-model queue. The batch loop takes the oldest request and
waits for company until the batch holds `max_batch_size` inputs or the oldest request has
waited `max_wait_s` since it arrived, whichever comes first: a lone request is never held
longer than that, and requests that queued while the model was busy are not held at all.
The batch then runs in the model's own thread (torch releases the GIL), and each request
gets its own slice of the outputs. A request whose caller gave up (timeout, disconnect) is
dropped before it runs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any


class QueueFull(Exception):
    """The model's queue holds `max_queue` requests already (answered 503 + Retry-After)."""


@dataclass
class _Job:
    items: Sequence[Any]
    future: asyncio.Future
    arrived: float = field(default=0.0)


class MicroBatcher:
    """Groups `submit(items)` calls into calls of `run_batch(all_items) -> outputs`."""

    def __init__(self, run_batch: Callable[[list[Any]], list[Any]], executor: Executor, *,
                 max_batch_size: int = 32, max_wait_s: float = 0.005, max_queue: int = 256,
                 on_batch: Callable[[int, int], None] | None = None):
        self.run_batch = run_batch
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.on_batch = on_batch  # (inputs, requests) of each batch run, for /metrics
        self._jobs: deque[_Job] = deque()
        self._queued_items = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    @property
    def depth(self) -> int:
        """Requests waiting (not yet running)."""
        return len(self._jobs)

    async def submit(self, items: Sequence[Any]) -> list[Any]:
        """The outputs for `items`, computed in a batch with whatever else is queued."""
        if len(self._jobs) >= self.max_queue:
            raise QueueFull(f"{len(self._jobs)} requests are waiting for this model")
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._loop())
        job = _Job(items, loop.create_future(), loop.time())
        self._jobs.append(job)
        self._queued_items += len(items)
        self._wake.set()
        return await job.future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for job in self._jobs:
            if not job.future.done():
                job.future.cancel()
        self._jobs.clear()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._jobs:
                self._wake.clear()
                await self._wake.wait()
            deadline = self._jobs[0].arrived + self.max_wait_s
            while self._queued_items < self.max_batch_size:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            batch = self._take()
            if batch:
                await self._run(batch)

    def _take(self) -> list[_Job]:
        batch: list[_Job] = []
        size = 0
        while self._jobs and (not batch or size + len(self._jobs[0].items) <= self.max_batch_size):
            job = self._jobs.popleft()
            self._queued_items -= len(job.items)
            if job.future.done():  # its caller gave up while it waited
                continue
            batch.append(job)
            size += len(job.items)
        return batch

    async def _run(self, batch: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        items = [x for job in batch for x in job.items]
        if self.on_batch is not None:
            self.on_batch(len(items), len(batch))
        try:
            outputs = await loop.run_in_executor(self.executor, self.run_batch, items)
        except Exception as exc:  # noqa: BLE001 - handed to the callers
            if len(batch) == 1:
                _settle(batch[0].future, exc=exc)
                return
            for job in batch:  # find whose input failed: each alone
                try:
                    _settle(job.future, await loop.run_in_executor(self.executor, self.run_batch, list(job.items)))
                except Exception as one:  # noqa: BLE001
                    _settle(job.future, exc=one)
            return
        start = 0
        for job in batch:
            _settle(job.future, outputs[start:start + len(job.items)])
            start += len(job.items)


def _settle(future: asyncio.Future, result: Any = None, exc: BaseException | None = None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
