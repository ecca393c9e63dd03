"""Dispatch: a batch goes to a ready replica; its outcomes go to the sink.

Each batch runs in its own task (a :class:`Job`). A failed try is retried, split or failed by
the pure rule of :mod:`consumer.retry_plan`. A revoke or a shutdown withdraws the jobs that no
replica is computing (nothing of them was produced) and waits, bounded, for the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka import TopicPartition

from consumer import traced
from consumer.errors import BatchFailedError, ModelOutputError, WorkerLostError
from consumer.hooks import Hooks
from consumer.pool.batch_work import fail
from consumer.pool.replica_pool import ReplicaPool
from consumer.reasons import DeadLetterStage
from consumer.retry_plan import Step, Tries, parts, plan
from consumer.sink.publish import Sink
from consumer.state.items import Computed, DeadLetter, Item, offset_ranges, work_request
from consumer.state.jobs import Job, Jobs
from consumer.state.ledger import Ledger
from consumer.state.throughput import Throughput
from consumer.state.work_messages import OutputSpec
from schemas.kafka_refusals import is_refusal

if TYPE_CHECKING:
    from consumer.ops.tracing import Tracer

log = structlog.get_logger(__name__)

DRAIN_RECHECK_S = 0.2
"""How often a drain looks again for jobs that became withdrawable (a replica lost)."""


@dataclass(frozen=True, slots=True)
class DispatchLimits:
    """The settings dispatch obeys."""

    max_attempts: int
    batch_timeout_s: float
    model: str
    """The ``--model`` named, for predictions no worker made."""


class Dispatcher:
    """Runs batches on the pool and dead letters on the sink, each in a tracked task."""

    def __init__(
        self,
        *,
        pool: ReplicaPool,
        sink: Sink,
        ledger: Ledger,
        throughput: Throughput,
        hooks: Hooks,
        limits: DispatchLimits,
        output_spec: Callable[[], Awaitable[OutputSpec]],
        clock: Callable[[], float],
        tracer: Tracer | None = None,
    ) -> None:
        self._sink = sink
        self._ledger = ledger
        self._clock = clock
        self._tracer = tracer
        self._jobs = Jobs(on_done=ledger.progress.set)
        self._settler = Settler(
            pool=pool,
            sink=sink,
            throughput=throughput,
            hooks=hooks,
            limits=limits,
            output_spec=output_spec,
            clock=clock,
            tracer=tracer,
        )

    def dispatch(self, batch: list[Item] | None) -> None:
        """Start a batch (nothing for None or empty)."""
        if not batch:
            return
        self._ledger.to_work(Counter(item.tp for item in batch))
        job = Job(batch)
        self._jobs.start(job, traced.batch(self._tracer, job.headers, self._settler.run(job)))

    def dead_letter(self, letter: DeadLetter) -> None:
        """Send a dead letter in the background (its record at work until acknowledged)."""
        self._ledger.to_work({TopicPartition(letter.topic, letter.partition): 1})
        self.spawn(self._sink.dead_letter(letter))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` as a tracked task: drains wait for it, its crash is logged."""
        return self._jobs.spawn(coro)

    def withdraw(self, partitions: set[TopicPartition] | None = None) -> int:
        """Cancel the jobs of ``partitions`` (all when None) that no replica has started.

        Nothing of them was produced, so the next owner's re-read duplicates nothing; their
        records of other partitions are dispatched again. Returns the records dropped.
        """
        dropped = 0
        for job in self._jobs.withdraw(partitions):
            self._ledger.to_work(Counter(item.tp for item in job.items), -1)
            kept = [i for i in job.items if partitions is not None and i.tp not in partitions]
            gone = [(i.tp, i.offset) for i in job.items if partitions is None or i.tp in partitions]
            dropped += len(gone)
            self._ledger.release(gone)
            self.dispatch(kept)
        return dropped

    async def drain(self, timeout_s: float, partitions: set[TopicPartition] | None = None) -> int:
        """Withdraw what no replica has started and wait for the rest (of ``partitions``, or
        all), up to ``timeout_s``; returns the records withdrawn. Past the deadline a full
        drain cancels what is left (its offsets stay uncommitted)."""
        deadline = self._clock() + timeout_s

        def busy() -> bool:
            return bool(self._jobs) if partitions is None else self._ledger.working(partitions)

        withdrawn = 0
        while True:
            withdrawn += self.withdraw(partitions)
            remaining = deadline - self._clock()
            if not busy() or remaining <= 0:
                break
            self._ledger.progress.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, DRAIN_RECHECK_S)):
                    await self._ledger.progress.wait()
        if busy():
            log.warning("in-flight work not finished in time", timeout_s=timeout_s)
            if partitions is None:
                await self._jobs.cancel_all()
        return withdrawn


class Settler:
    """Takes one batch to its end: tries it on a replica as the retry plan says, splits or
    fails it, and publishes what it became."""

    def __init__(
        self,
        *,
        pool: ReplicaPool,
        sink: Sink,
        throughput: Throughput,
        hooks: Hooks,
        limits: DispatchLimits,
        output_spec: Callable[[], Awaitable[OutputSpec]],
        clock: Callable[[], float],
        tracer: Tracer | None,
    ) -> None:
        self._pool = pool
        self._output_spec = output_spec
        self._sink = sink
        self._throughput = throughput
        self._hooks = hooks
        self._limits = limits
        self._clock = clock
        self._tracer = tracer
        self._batch_ids = itertools.count(1)

    async def run(self, job: Job) -> None:
        """Settle ``job``'s batch: computed and published, or its records dead-lettered."""
        items = job.items
        # Task-local context: every log line about this batch carries its id and offsets.
        structlog.contextvars.bind_contextvars(
            batch_id=str(next(self._batch_ids)), offsets=offset_ranges(items)
        )
        await self._settle(job, items, Tries(self._limits.max_attempts))

    async def _settle(self, job: Job, items: list[Item], tries: Tries, suffix: str = "") -> None:
        """Compute ``items`` and publish them; a split part (``suffix``) publishes on its own,
        so the molecules beside a hanging one do not wait for it to be isolated."""
        if suffix:  # a part runs in its own task (gather): its log context stays its own
            parent = structlog.contextvars.get_contextvars().get("batch_id", "")
            structlog.contextvars.bind_contextvars(
                batch_id=f"{parent}{suffix}", offsets=offset_ranges(items)
            )
        try:
            computed = await self._infer(job, items, tries)
            if computed is None:
                return
            job.publishing = True  # from here on a revoke waits for it
            await traced.stage(self._tracer, "molstream.produce", self._sink.publish([computed]))
        except Exception as exc:
            if is_refusal(exc):  # a right withdrawn, no record's fault: Output.refused ends
                raise  # the process; its records stay uncommitted, never dead-lettered
            # The batch's output could not be made or sent (a record the broker refuses for
            # good): its inputs become dead letters instead, and no revoke may take it back.
            job.publishing = True
            log.exception("batch could not be published; dead-lettering its records")
            letters = [item.letter(DeadLetterStage.PUBLISH, exc) for item in items]
            await asyncio.gather(*(self._sink.dead_letter(letter) for letter in letters))

    async def _infer(self, job: Job, items: list[Item], tries: Tries) -> Computed | None:
        """Try ``items`` as the retry plan says; then fail alone, or split (None: settled)."""
        error: Exception | None = None
        while (step := plan(tries, len(items))) is Step.TRY:
            if error is not None:
                self._hooks.retry()
            try:
                return await self._try(job, items)
            except ModelOutputError as exc:
                # The plugin's bug, not the batch's: trying again or splitting cannot help.
                log.error(
                    "model output not accepted: batch failed", size=len(items), error=str(exc)
                )
                return await self._failed(items, exc)
            except WorkerLostError as exc:
                # A worker computing several batches dies for one of them: the others must
                # not pay an attempt each (the tries stay bounded all the same).
                error, spent, reason = exc, exc.reason.spends_attempt and not exc.shared, exc.reason
            except BatchFailedError as exc:
                error, spent, reason = exc, True, None
            tries = tries.after(spent_attempt=spent, reason=reason)
        if step is Step.SPLIT:
            log.warning("splitting a failing batch", size=len(items), error=str(error))
            # Each part takes the next free slot: with one slot a worker, each its own worker.
            await asyncio.gather(
                *(
                    self._settle(job, part, Tries(attempts), suffix)
                    for suffix, part, attempts in parts(items, tries, self._limits.max_attempts)
                )
            )
            return None
        assert error is not None  # a plan ends in FAIL only after a failed try
        return await self._failed(items, error)

    async def _try(self, job: Job, items: list[Item]) -> Computed:
        """One try on the next ready replica slot; raises what the pool raises."""
        spec = await self._output_spec()
        replica = await self._pool.acquire()
        for item in items:
            item.attempts += 1
        started = self._clock()
        where = {"worker": replica.name, "node": replica.node_id, "size": len(items)}
        job.computing += 1
        lost = False
        try:
            result = await traced.process(
                self._tracer,
                self._pool,
                replica,
                work_request(items, spec),
                self._limits.batch_timeout_s,
            )
        except WorkerLostError as exc:
            lost, exc.shared = True, replica.busy > 1
            log.warning("batch lost with its worker", reason=exc.reason, **where)
            raise
        except BatchFailedError as exc:
            log.warning("batch failed", error=str(exc), **where)
            raise
        finally:
            job.computing -= 1
            if not lost:  # whatever else ended the call (a cancel too): the slot comes back
                self._pool.release(replica)
        elapsed = self._clock() - started
        self._throughput.batch_done(len(items), elapsed)
        self._hooks.batch(replica.name, len(items), elapsed)
        return Computed(items, result)

    async def _failed(self, items: list[Item], error: Exception) -> Computed:
        """FAILED predictions, made here from the records' keys, for items no worker computed."""
        # A model output error names the model and what it returned: its class adds nothing.
        text = f"{type(error).__name__}: {error}"
        if isinstance(error, ModelOutputError):
            text = str(error)
        keys = [i.key for i in items]
        work = work_request(items, await self._output_spec())
        return Computed(items, fail(work, keys, text, model=self._limits.model), error)
