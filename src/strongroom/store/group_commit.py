"""The group-commit writer both stores share.

Every write goes to one writer thread, which commits all the jobs queued at that moment in one
transaction (the backend decides how: `_commit`) and then wakes each waiting event loop once
for the whole batch. Concurrent requests share a commit (an fsync) instead of queueing behind
one another, and the event loop never waits on the disk or the network.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from strongroom.errors import StrongroomError
from strongroom.logs import name_os_thread

Param = str | int | bytes | None
Op = tuple[str, Sequence[Param]]


class StoreClosed(StrongroomError):
    pass


@dataclass(slots=True)
class Job:
    ops: Sequence[Op]
    future: asyncio.Future[None] | None
    loop: asyncio.AbstractEventLoop | None
    done: threading.Event | None = None
    error: BaseException | None = None


class GroupCommitWriter(threading.Thread):
    """Subclasses implement `_commit` (set `job.error` per failed job, `failure` when the
    store cannot be written at all), `translate` and `_close`."""

    MAX_BATCH: Final = 256

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.batches = 0
        self.jobs = 0
        # Why the last commit failed (the store is unwritable), or None: read by the pipeline,
        # which refuses token operations while it is set (fail closed).
        self.failure: str | None = None
        self.closed = False

    # -- the writer thread ------------------------------------------------------------------
    def _commit(self, batch: list[Job]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def translate(self, err: BaseException) -> BaseException:  # pragma: no cover - abstract
        raise NotImplementedError

    def _close(self) -> None:
        """Release the writer's connection (called on the writer thread when it stops)."""

    def run(self) -> None:
        name_os_thread(self.name)
        stop = False
        while not stop:
            job = self.queue.get()
            if job is None:
                break
            batch = [job]
            while len(batch) < self.MAX_BATCH:
                try:
                    nxt = self.queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._commit(batch)
            self._wake(batch)
        self._close()

    def _wake(self, batch: list[Job]) -> None:
        self.batches += 1
        self.jobs += len(batch)
        # One wake-up per event loop for the whole batch, not one per job.
        by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
        for job in batch:
            if job.done is not None:
                job.done.set()
            else:
                assert job.loop is not None
                by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            loop.call_soon_threadsafe(self._resolve, jobs)

    def _resolve(self, jobs: list[Job]) -> None:
        for job in jobs:
            fut = job.future
            if fut is None or fut.done():
                continue
            if job.error is None:
                fut.set_result(None)
            else:
                fut.set_exception(self.translate(job.error))

    # -- the callers' side ------------------------------------------------------------------
    async def write(self, ops: Sequence[Op]) -> None:
        """Run `ops` atomically; returns once they are durable."""
        if self.closed:
            raise StoreClosed("store is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self.queue.put(Job(ops, fut, loop))
        await asyncio.shield(fut)

    def write_sync(self, ops: Sequence[Op]) -> None:
        """Blocking variant for command-line tools (no event loop)."""
        if self.closed:
            raise StoreClosed("store is closed")
        job = Job(ops, None, None, threading.Event())
        self.queue.put(job)
        assert job.done is not None
        job.done.wait()
        if job.error is not None:
            raise self.translate(job.error)

    async def probe(self) -> bool:
        """An empty transaction through the writer: clears `failure` when writes work again."""
        try:
            await self.write([])
        except Exception:  # noqa: BLE001 - any failure means "still not writable"
            return False
        return self.failure is None

    def stop(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.queue.put(None)
        self.join()
