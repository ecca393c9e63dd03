"""The tasks dispatch runs: batches (each a :class:`Job`) and dead letters, tracked so that a
revoke or a shutdown can withdraw what no replica started and wait for the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import TopicPartition

from consumer.state.items import Item
from consumer.state.work_messages import Headers

log = structlog.get_logger(__name__)


@dataclass(eq=False, slots=True)
class Job:
    """One dispatched batch and what a revoke needs to know of it."""

    items: list[Item]
    task: asyncio.Task[None] | None = None
    computing: int = 0
    """Sub-batches of it on a replica right now."""
    publishing: bool = False

    def headers(self) -> list[Headers]:
        """Its inputs' headers (what a batch span links to)."""
        return [i.headers for i in self.items]

    @property
    def withdrawable(self) -> bool:
        """No replica computes it and nothing of it is produced yet: it may go unproduced."""
        return self.computing == 0 and not self.publishing


class Jobs:
    """The tasks running, the jobs among them; ``on_done`` hears every task's end."""

    def __init__(self, on_done: Callable[[], None]) -> None:
        self._on_done = on_done
        self._tasks: set[asyncio.Task[None]] = set()
        self._jobs: set[Job] = set()

    def __bool__(self) -> bool:
        return bool(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` as a tracked task: drains wait for it, its crash is logged."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def start(self, job: Job, routine: Coroutine[Any, Any, None]) -> None:
        """Run a job's routine as a tracked task."""
        job.task = self.spawn(routine)
        self._jobs.add(job)
        job.task.add_done_callback(lambda _: self._jobs.discard(job))

    def withdraw(self, partitions: set[TopicPartition] | None) -> list[Job]:
        """Cancel and return the jobs of ``partitions`` (all when None) no replica started."""
        taken = []
        for job in [j for j in self._jobs if j.withdrawable and j.task and not j.task.done()]:
            if partitions is not None and not any(i.tp in partitions for i in job.items):
                continue
            assert job.task is not None
            job.task.cancel()
            self._jobs.discard(job)
            taken.append(job)
        return taken

    async def cancel_all(self) -> None:
        """Cancel every task and wait for them to end."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._on_done()
        log_crash(task)


def log_crash(task: asyncio.Task[None]) -> None:
    """Say loudly when a task ended by an exception (a routine should run until cancelled)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("task died", task=task.get_name(), error=repr(task.exception()))
