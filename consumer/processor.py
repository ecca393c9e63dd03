"""The stream processor: fetch → decode → batch → worker → produce → commit.

Offsets are committed only after the outputs of their records are acknowledged, so a lost
worker, node or consumer loses nothing (at-least-once). Memory stays flat at any lag: at most
``max_in_flight`` molecules are fetched and not yet done; at the bound, fetching pauses.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from consumer import ray_runtime
from consumer.autoscaler import Autoscaler, gcs_address_of_current_ray
from consumer.batching import Batcher
from consumer.errors import BatchFailedError, RayLostError, WorkerLostError
from consumer.health import Health
from consumer.hooks import Hooks, PartitionLag
from consumer.models import ModelResult, resolve_model_class
from consumer.offsets import OffsetTracker
from consumer.output import DeadLetter, Output
from consumer.policy import Ewma, PolicyConfig
from consumer.pool import ActorOptions, Worker, WorkerPool, WorkerState
from consumer.ray_health import RayWatchdog
from consumer.settings import ConsumerSettings
from consumer.status_server import StatusServer
from schemas import MOLECULE_CODEC, DecodeError, Molecule, Prediction, Status
from schemas.registry import SchemaRegistry, subject_of
from schemas.wire import Decoder, SchemaPendingError

log = structlog.get_logger(__name__)

NODE_LOSS_TRIES_FACTOR = 3
"""A batch gets at most this many times ``max_attempts`` tries, node losses included."""

FETCH_BACKOFF_S = 0.1
"""First wait after a failed fetch; it doubles up to 5 s."""

KEEPALIVE_POLL_S = 1.0
"""How often a paused consumer polls Kafka: aiokafka drops a member that stops polling."""


@dataclass(slots=True)
class Item:
    """One fetched, decoded molecule on its way through the pipeline."""

    tp: TopicPartition
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    molecule: Molecule
    fetched_at: float
    attempts: int = 0


@dataclass(eq=False, slots=True)
class Job:
    """One dispatched batch and what a revoke needs to know of it."""

    items: list[Item]
    task: asyncio.Task[None] | None = None
    computing: int = 0
    """Sub-batches of it on a worker right now."""
    publishing: bool = False

    @property
    def withdrawable(self) -> bool:
        """No worker computes it and nothing of it is produced yet: it may go unproduced."""
        return self.computing == 0 and not self.publishing


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one item: its model result, who computed it, how many tries it took."""

    item: Item
    result: ModelResult
    worker: Worker | None
    error_stage: str | None = None


class StreamProcessor:
    """``molstream consume`` as an object: ``start``, ``stop`` (safe twice), ``async with``."""

    def __init__(
        self,
        settings: ConsumerSettings,
        *,
        hooks: Hooks | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.hooks = hooks or Hooks()
        self._clock = clock
        self._tracker: OffsetTracker[TopicPartition] = OffsetTracker()
        self._batcher: Batcher[Item] = Batcher(
            batch_size=settings.batch_size, batch_wait_s=settings.batch_wait_s
        )
        self._in_flight = 0
        self._room = asyncio.Event()
        self._room.set()
        self._progress = asyncio.Event()  # set whenever a record or a task finishes
        self._batch_ids = itertools.count(1)
        self._committed: dict[TopicPartition, int] = {}
        # Records handed to a task (batch or dead letter) and not finished, per partition:
        # what a revoke waits for. Records still in the batcher are not counted.
        self._working: Counter[TopicPartition] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._jobs: set[Job] = set()
        self._last_poll = clock()
        self._fetch_backoff_s = FETCH_BACKOFF_S
        self._routines: list[asyncio.Task[None]] = []
        self._started = False
        self._ray_owned = False
        self.revokes = 0
        """Rebalances that took partitions from this consumer."""
        self.ray_watchdog = RayWatchdog(timeout_s=settings.ray_timeout_s)
        self.pool = WorkerPool(
            model=settings.model,
            model_options=settings.model_option,
            actor_options=ActorOptions(
                num_cpus=settings.worker_num_cpus,
                num_gpus=settings.worker_num_gpus,
                resources=settings.worker_resources,
            ),
            target=settings.min_workers,
            on_failure=self.hooks.worker_failure,
            on_ready=lambda info: self.hooks.worker_ready(info.model, info.model_version),
        )
        self.registry = (
            SchemaRegistry(settings, on_error=self.hooks.registry_error)
            if settings.schema_registry_url is not None
            else None
        )
        self.decoder = Decoder(MOLECULE_CODEC, self.registry)
        self.output = Output(
            settings,
            output_topic=settings.output_topic,
            dlq_topic=settings.dlq_topic,
            on_error=self.hooks.broker_error,
            registry=self.registry if settings.writes_registry_framing else None,
        )
        self._rate = Ewma()
        self._completed = 0  # records done since start, for the pool's absorption rate
        self._lag_base: dict[TopicPartition, int] = {}
        self.autoscaler = Autoscaler(
            pool=self.pool,
            config=PolicyConfig(
                min_workers=settings.min_workers,
                max_workers=settings.max_workers,
                target_drain_s=settings.target_drain_s,
                upscale_delay_s=settings.upscale_delay_s,
                downscale_delay_s=settings.downscale_delay_s,
                batch_size=settings.batch_size,
            ),
            read_lag=self.lag,
            rate_per_worker=lambda: self._rate.value,
            completed=lambda: self._completed,
            hooks=self.hooks,
            interval_s=settings.autoscale_interval_s,
            gcs_address=gcs_address_of_current_ray,
            bundle=self.pool.bundle,
            clock=clock,
        )
        self.consumer = self._new_consumer()

    def _new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            **self.settings.client_kwargs(),
            group_id=self.settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Records of aborted transactions upstream are never read (Kafka's default reads them).
            isolation_level="read_committed",
            max_poll_records=self.settings.max_in_flight,
            session_timeout_ms=int(self.settings.session_timeout_s * 1000),
            heartbeat_interval_ms=int(self.settings.heartbeat_interval_s * 1000),
            max_poll_interval_ms=int(self.settings.max_poll_interval_s * 1000),
            rebalance_timeout_ms=int(self.settings.rebalance_timeout_s * 1000),
            group_instance_id=self.settings.group_instance_id,
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the model, join Ray, start the pool, connect to Kafka, start the routines."""
        if self._started:
            return
        resolve_model_class(self.settings.model)  # fail fast on a typo, before any I/O
        self._started = True
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        # Ray installs signal handlers from the main thread only, so connect here, blocking.
        self._ray_owned = ray_runtime.connect(self.settings.ray_address, self.settings.ray_node_ip)
        await self.pool.start()
        if self.registry is not None:  # waits (retrying) while the registry is away
            await self.registry.start()
            await self.registry.prime(subject_of(self.settings.input_topic))
        await self._until_connected("producer", self.output.start)
        await self._until_connected("consumer", self._start_consumer)
        self.consumer.subscribe([self.settings.input_topic], listener=_Rebalance(self))
        await self.autoscaler.start()
        self._routines = [
            asyncio.create_task(self._fetch_routine(), name="fetch"),
            asyncio.create_task(self._commit_routine(), name="commit"),
            asyncio.create_task(self.ray_watchdog.watch(), name="ray-watchdog"),
        ]
        for routine in self._routines:
            routine.add_done_callback(_log_crash)
        log.info(
            "consumer started",
            topic=self.settings.input_topic,
            group=self.settings.group_id,
            workers=self.pool.target,
        )

    async def _start_consumer(self) -> None:
        # Subscribe after start (by the caller): start() then returns once connected, not
        # after the first group join, which may take longer than a broker call should.
        try:
            await asyncio.wait_for(self.consumer.start(), self.settings.broker_timeout_s)
        except BaseException:
            await self.consumer.stop()
            self.consumer = self._new_consumer()  # a stopped client cannot start again
            raise

    async def _until_connected(self, what: str, connect: Callable[[], Awaitable[None]]) -> None:
        """Retry ``connect`` with backoff while the broker is unreachable (logged, counted)."""
        backoff_s = 0.5
        while True:
            self._last_poll = self._clock()  # retrying to connect is alive, not hung
            try:
                await connect()
                return
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning(
                    "broker unreachable, will retry",
                    client=what,
                    bootstrap_servers=self.settings.bootstrap_servers,
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in_s=backoff_s,
                )
                self.hooks.broker_error("connect")
                await asyncio.sleep(backoff_s)
                backoff_s = min(30.0, backoff_s * 2)

    async def stop(self) -> None:
        """Graceful shutdown, in this order (each step bounded):

        1. stop fetching: nothing new enters, so the drain below can finish;
        2. withdraw the batches no worker has started (never produced: the next owner reads
           them again) and wait for the ones running, up to ``shutdown_timeout_s``: finished
           work is committed, not redone by the next owner;
        3. flush the producer: every prediction sent is acknowledged before its commit;
        4. commit: the next owner starts right after the last finished record (no duplicates);
        5. leave the group: partitions move to the remaining consumers at once;
        6. stop the workers and leave Ray last: nothing needs them any more.

        With the Ray head lost, steps 2 and 6 are skipped: no batch can finish and Ray calls
        would hang until Ray aborts the process.
        """
        if not self._started:
            return
        self._started = False
        ray_lost = self.ray_watchdog.lost
        if not ray_lost:
            await self.autoscaler.stop()  # 0. no resizing while the pool drains
        routines, self._routines = self._routines, []
        fetch = routines[0] if routines else None
        if fetch is not None:
            fetch.cancel()
            await asyncio.gather(fetch, return_exceptions=True)
        self._set_in_flight(self._in_flight - len(self._batcher.flush() or []))
        await self._drain(0.0 if ray_lost else self.settings.shutdown_timeout_s)
        for task in routines[1:]:
            task.cancel()
        await asyncio.gather(*routines[1:], return_exceptions=True)
        await self.output.stop()
        await self._commit()
        try:
            await asyncio.wait_for(self.consumer.stop(), self.settings.broker_timeout_s)
        except TimeoutError:
            log.warning("consumer did not leave the group in time")
        if self.registry is not None:
            await self.registry.stop()
        if ray_lost:
            log.error("stopped without the Ray cluster", in_flight=self._in_flight)
            return
        await self.pool.stop()
        if self._ray_owned:
            await asyncio.to_thread(ray_runtime.disconnect)
        log.info("consumer stopped", in_flight=self._in_flight)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def run_until(self, stop: asyncio.Event) -> None:
        """Process until ``stop`` is set; re-raises if a routine died (after shutting down)."""
        waiter = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([waiter, *self._routines], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        crashed = [t for t in self._routines if t.done() and not t.cancelled() and t.exception()]
        log.info("shutting down", reason="stop requested" if stop.is_set() else "routine failed")
        if crashed:
            await self.stop()
            raise crashed[0].exception()  # type: ignore[misc]

    def health(self) -> Health:
        """Liveness and readiness as the health endpoints report them."""
        counts = self.pool.counts()
        return Health(
            polled_s_ago=self._clock() - self._last_poll,
            assigned=bool(self._started and self.consumer.assignment()),
            workers=sum(n for state, n in counts.items() if state is not WorkerState.DRAINING),
        )

    @property
    def committed(self) -> dict[TopicPartition, int]:
        """Offsets this consumer committed last, per partition."""
        return dict(self._committed)

    # -- intake ----------------------------------------------------------------------------

    async def _fetch_routine(self) -> None:
        while True:
            await self._wait_for_room()
            deadline = self._batcher.deadline()
            wait_s = 0.2 if deadline is None else max(0.0, deadline - self._clock())
            await self._poll(wait_s, self.settings.max_in_flight - self._in_flight)
            self._dispatch(self._batcher.due(self._clock()))

    async def _poll(self, wait_s: float, max_records: int) -> None:
        """One ``getmany``, its records taken in. Every call counts as a poll for the group."""
        try:
            fetched = await self.consumer.getmany(
                timeout_ms=int(wait_s * 1000), max_records=max(1, max_records)
            )
        except KafkaError as exc:
            # The broker is away or the group is rebalancing: keep trying, report it.
            log.warning("fetch failed, will retry", error=f"{type(exc).__name__}: {exc}")
            self.hooks.broker_error("fetch")
            await asyncio.sleep(self._fetch_backoff_s)
            self._fetch_backoff_s = min(5.0, self._fetch_backoff_s * 2)
            return
        self._fetch_backoff_s = FETCH_BACKOFF_S
        now = self._last_poll = self._clock()
        for tp, records in fetched.items():
            for record in records:
                self._intake(tp, record, now)
            self.hooks.consumed(len(records))

    def _intake(self, tp: TopicPartition, record: Any, now: float) -> None:
        # The record's Kafka timestamp dates the lag in seconds; -1 means the producer set none.
        created_s = record.timestamp / 1000 if record.timestamp > 0 else time.time()
        try:
            self._tracker.register(tp, record.offset, created_s)
        except ValueError:
            # The position moved back (an offset reset after log truncation): start the
            # partition's bookkeeping afresh; late completions of the old range are ignored.
            log.warning(
                "offsets moved back, tracking afresh",
                topic=tp.topic,
                partition=tp.partition,
                offset=record.offset,
            )
            self._tracker.forget(tp)
            self._tracker.register(tp, record.offset, created_s)
        self._set_in_flight(self._in_flight + 1)
        headers = tuple(record.headers or ())
        try:
            molecule = self.decoder.decode(record.value, headers)
        except SchemaPendingError:
            # Its writer schema is not cached yet: fetched in a task while the loop goes on.
            self._working[tp] += 1
            self._spawn(self._intake_pending(tp, record, headers, now))
            return
        except DecodeError as exc:
            self._working[tp] += 1
            self._spawn(self._dead_letter_routine(_undecodable(tp, record, headers, exc)))
            return
        self._admit(tp, record, headers, molecule, now)

    async def _intake_pending(
        self, tp: TopicPartition, record: Any, headers: tuple[tuple[str, bytes], ...], now: float
    ) -> None:
        """A record waiting for its writer schema (in flight, its offset pending)."""
        try:
            molecule = await self.decoder.decode_async(record.value, headers)
        except DecodeError as exc:
            await self._dead_letter_routine(_undecodable(tp, record, headers, exc))
            return
        self._working[tp] -= 1  # the batch it joins counts it from now on
        self._admit(tp, record, headers, molecule, now)

    def _admit(
        self,
        tp: TopicPartition,
        record: Any,
        headers: tuple[tuple[str, bytes], ...],
        molecule: Molecule,
        now: float,
    ) -> None:
        item = Item(
            tp=tp,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key,
            value=record.value,
            headers=headers,
            molecule=molecule,
            fetched_at=now,
        )
        self._dispatch(self._batcher.add(item, now))

    async def _wait_for_room(self) -> None:
        if self._in_flight < self.settings.max_in_flight:
            return
        # What waits in the batcher counts as in flight: send it, or nothing frees room.
        self._dispatch(self._batcher.flush())
        while self._in_flight >= self.settings.max_in_flight:
            # Keep polling the paused partitions (they return nothing): a member that stops
            # calling getmany for max_poll_interval_s is dropped from the group, however long
            # the pool takes (a Spot drought may last minutes). A partition assigned meanwhile
            # is paused here too; if a rebalance slips records in anyway, they are taken in.
            self.consumer.pause(*self.consumer.assignment())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), KEEPALIVE_POLL_S)
            if self._in_flight < self.settings.max_in_flight:
                break
            await self._poll(0.0, self.settings.max_in_flight)
        self.consumer.resume(*self.consumer.assignment())

    def _set_in_flight(self, count: int) -> None:
        self._in_flight = count
        if count < self.settings.max_in_flight:
            self._room.set()
        else:
            self._room.clear()
        self.hooks.in_flight(count)

    # -- dispatch --------------------------------------------------------------------------

    def _dispatch(self, batch: list[Item] | None) -> None:
        if batch:
            self._working.update(item.tp for item in batch)
            job = Job(batch)
            job.task = self._spawn(self._batch_routine(job))
            self._jobs.add(job)
            job.task.add_done_callback(lambda _: self._jobs.discard(job))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._progress.set()
        _log_crash(task)

    def _withdraw(self, partitions: set[TopicPartition] | None = None) -> int:
        """Cancel the batches of ``partitions`` (all when None) that no worker has started.

        Nothing of them was produced, so the next owner's re-read duplicates nothing; their
        records of other partitions are dispatched again. Returns the records dropped.
        """
        dropped = 0
        for job in [j for j in self._jobs if j.withdrawable and j.task is not None]:
            if partitions is not None and not any(i.tp in partitions for i in job.items):
                continue
            assert job.task is not None
            job.task.cancel()
            self._jobs.discard(job)
            self._working.subtract(item.tp for item in job.items)
            kept = [i for i in job.items if partitions is not None and i.tp not in partitions]
            dropped += len(job.items) - len(kept)
            self._set_in_flight(self._in_flight - (len(job.items) - len(kept)))
            self._dispatch(kept)
        return dropped

    async def _batch_routine(self, job: Job) -> None:
        items = job.items
        # Task-local context: every log line about this batch carries its id and offsets.
        structlog.contextvars.bind_contextvars(
            batch_id=str(next(self._batch_ids)), offsets=_offset_ranges(items)
        )
        limit = self.settings.max_smiles_length
        too_long = [i for i in items if len(i.molecule.smiles) > limit]
        outcomes = [
            Outcome(i, ModelResult.invalid(f"SMILES longer than {limit} characters"), None)
            for i in too_long
        ]
        to_model = [i for i in items if len(i.molecule.smiles) <= limit]
        try:
            if to_model:
                outcomes += await self._infer(job, to_model, self.settings.max_attempts)
            job.publishing = True  # from here on a revoke waits for it
            await self._publish(outcomes)
        except Exception as exc:
            # The batch's output could not be made or sent (a model result that does not
            # encode, a record the broker refuses): its inputs become dead letters instead.
            log.exception("batch could not be published; dead-lettering its records")
            letters = [_letter(item, "publish", exc) for item in items]
            await asyncio.gather(*(self._dead_letter_routine(letter) for letter in letters))

    async def _infer_part(
        self, job: Job, items: list[Item], suffix: str, attempts: int
    ) -> list[Outcome]:
        # Runs in its own task (gather): the sub-batch's log context stays its own.
        parent = structlog.contextvars.get_contextvars().get("batch_id", "")
        structlog.contextvars.bind_contextvars(
            batch_id=f"{parent}{suffix}", offsets=_offset_ranges(items)
        )
        return await self._infer(job, items, attempts)

    async def _infer(self, job: Job, items: list[Item], attempts: int) -> list[Outcome]:
        """Run ``items`` on a worker, up to ``attempts`` times; then split to isolate a bad
        molecule. A single molecule that still fails is FAILED (and dead-lettered)."""
        error: Exception | None = None
        failures = tries = 0
        # Node trouble costs no attempt, but even that is bounded: no endless retries.
        while failures < attempts and tries < attempts * NODE_LOSS_TRIES_FACTOR:
            tries += 1
            if error is not None:
                self.hooks.retry()
            worker = await self.pool.acquire()
            worker.holding = tuple((i.tp.topic, i.tp.partition, i.offset) for i in items)
            for item in items:
                item.attempts += 1
            started = self._clock()
            job.computing += 1
            try:
                results = await self.pool.predict(
                    worker,
                    [i.molecule.smiles for i in items],
                    timeout_s=self.settings.batch_timeout_s,
                )
            except WorkerLostError as exc:
                error = exc
                # A preempted or vanished node is not the batch's fault: no attempt spent.
                failures += exc.reason not in ("preempted", "unavailable")
                log.warning(
                    "batch lost with its worker",
                    worker=worker.name,
                    node=worker.node_id,
                    size=len(items),
                    reason=exc.reason,
                )
                continue
            except BatchFailedError as exc:
                self.pool.release(worker)
                error = exc
                failures += 1
                log.warning(
                    "batch failed",
                    worker=worker.name,
                    node=worker.node_id,
                    size=len(items),
                    error=str(exc),
                )
                continue
            finally:
                job.computing -= 1
            self.pool.release(worker)
            elapsed = self._clock() - started
            if elapsed > 0:
                self._rate.update(len(items) / elapsed)
            self.hooks.batch(worker.name, len(items), elapsed)
            return [Outcome(i, r, worker) for i, r in zip(items, results, strict=True)]
        if len(items) > 1:
            log.warning("splitting a failing batch", size=len(items), error=str(error))
            half = len(items) // 2
            parts = await asyncio.gather(
                *(
                    self._infer_part(
                        job, part, suffix, 1 if len(part) > 1 else self.settings.max_attempts
                    )
                    for suffix, part in (("a", items[:half]), ("b", items[half:]))
                )
            )
            return parts[0] + parts[1]
        failed = ModelResult(Status.FAILED, {}, f"{type(error).__name__}: {error}")
        return [Outcome(items[0], failed, None, error_stage="predict")]

    # -- output ----------------------------------------------------------------------------

    async def _publish(self, outcomes: list[Outcome]) -> None:
        now = datetime.now(UTC)
        predictions = [self._prediction(o, now) for o in outcomes]
        letters = [
            _letter(o.item, o.error_stage, o.result.error or "")
            for o in outcomes
            if o.error_stage is not None
        ]
        await asyncio.gather(
            self.output.predictions(predictions, [o.item.headers for o in outcomes]),
            self.output.dead_letters(letters),
        )
        acked_ms = time.time() * 1000
        for outcome, prediction in zip(outcomes, predictions, strict=True):
            ts = outcome.item.timestamp_ms
            self.hooks.prediction(prediction.status, (acked_ms - ts) / 1000 if ts > 0 else None)
            self._done(outcome.item.tp, outcome.item.offset)
        for letter in letters:
            self.hooks.dead_letter(letter.stage)

    def _prediction(self, outcome: Outcome, now: datetime) -> Prediction:
        item, result = outcome.item, outcome.result
        info = outcome.worker.info if outcome.worker else None
        return Prediction(
            id=item.molecule.id,
            smiles=item.molecule.smiles,
            status=result.status,
            outputs=result.outputs,
            error=result.error,
            model=info.model if info else self.settings.model,
            model_version=info.model_version if info else "",
            worker=outcome.worker.name if outcome.worker else "",
            attempts=item.attempts,
            source_topic=item.tp.topic,
            source_partition=item.tp.partition,
            source_offset=item.offset,
            produced_at=now,
            latency_ms=(self._clock() - item.fetched_at) * 1000,
        )

    async def _dead_letter_routine(self, letter: DeadLetter) -> None:
        tp = TopicPartition(letter.topic, letter.partition)
        try:
            await self.output.dead_letters([letter])
        except Exception:
            log.exception(
                "dead letter refused: offset left uncommitted",
                topic=letter.topic,
                partition=letter.partition,
                offset=letter.offset,
            )
            self._abandon(tp)
            return
        self.hooks.dead_letter(letter.stage)
        self._done(tp, letter.offset)

    def _done(self, tp: TopicPartition, offset: int) -> None:
        self._tracker.done(tp, offset)
        self._completed += 1
        self._abandon(tp)

    def _abandon(self, tp: TopicPartition) -> None:
        """The record leaves the pipeline. Without :meth:`_done` its offset stays pending, so
        the partition's commits stop before it: loud (lag grows, alerts fire), not lost."""
        self._working[tp] -= 1
        self._set_in_flight(self._in_flight - 1)
        self._progress.set()

    # -- commit ----------------------------------------------------------------------------

    async def _commit_routine(self) -> None:
        while True:
            await asyncio.sleep(self.settings.commit_interval_s)
            await self._commit()

    async def _commit(self, partitions: set[TopicPartition] | None = None) -> None:
        assigned = self.consumer.assignment()
        offsets = {
            tp: offset
            for tp, offset in self._tracker.committable().items()
            if tp in assigned
            and (partitions is None or tp in partitions)
            and self._committed.get(tp) != offset
        }
        if not offsets:
            return
        try:
            await asyncio.wait_for(self.consumer.commit(offsets), self.settings.broker_timeout_s)
        except (KafkaError, TimeoutError) as exc:
            log.warning("commit failed, will retry", error=f"{type(exc).__name__}: {exc}")
            self.hooks.broker_error("commit")
            return
        moved = sum(o - self._committed.get(tp, o) for tp, o in offsets.items())
        self._committed.update(offsets)
        self.hooks.committed(moved)

    async def _drain(self, timeout_s: float, partitions: set[TopicPartition] | None = None) -> int:
        """Withdraw the batches (of ``partitions``, or all) that no worker has started and wait
        for the rest, up to ``timeout_s``; returns the records withdrawn. A batch whose worker
        is lost meanwhile goes back to waiting for a worker, and is withdrawn then."""
        deadline = self._clock() + timeout_s

        def busy() -> bool:
            if partitions is None:
                return bool(self._tasks)
            return any(self._working[tp] > 0 for tp in partitions)

        withdrawn = 0
        while True:
            withdrawn += self._withdraw(partitions)
            remaining = deadline - self._clock()
            if not busy() or remaining <= 0:
                break
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), min(remaining, 0.2))
        if busy():
            log.warning("in-flight work not finished in time", timeout_s=timeout_s)
            if partitions is None:
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
        return withdrawn

    async def lag(self) -> dict[tuple[str, int], int]:
        """Records not yet committed per assigned partition (in-flight ones included); the
        hooks get them too, with the age of each partition's oldest record not yet done."""
        assigned = list(self.consumer.assignment())
        if not assigned:
            self.hooks.lag(self.settings.group_id, {})
            return {}
        timeout_s = self.settings.broker_timeout_s
        ends = await asyncio.wait_for(self.consumer.end_offsets(assigned), timeout_s)
        missing = [tp for tp in assigned if tp not in self._committed and tp not in self._lag_base]
        for tp in missing:
            committed = await asyncio.wait_for(self.consumer.committed(tp), timeout_s)
            if committed is None:
                first = await asyncio.wait_for(self.consumer.beginning_offsets([tp]), timeout_s)
                committed = first[tp]
            self._lag_base[tp] = committed
        lags = {}
        for tp in assigned:
            base = self._committed.get(tp, self._lag_base.get(tp, 0))
            # Some brokers (Tansu) report a low end offset; what we hold is lag all the same.
            lag = max(ends[tp] - base, self._tracker.pending_count(tp), 0)
            lags[(tp.topic, tp.partition)] = lag
        now_s, held = time.time(), self.consumer.assignment()  # a revoke may have come meanwhile
        oldest = {tp: self._tracker.oldest_pending(tp) for tp in assigned if tp in held}
        self.hooks.lag(
            self.settings.group_id,
            {
                (tp.topic, tp.partition): PartitionLag(
                    lags[(tp.topic, tp.partition)], 0.0 if ts is None else max(0.0, now_s - ts)
                )
                for tp, ts in oldest.items()
            },
        )
        return lags

    # -- rebalance -------------------------------------------------------------------------

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Stop dispatching the revoked partitions, finish their in-flight work (bounded),
        commit what is done and forget the rest: the new owner re-reads it."""
        if not revoked:
            return
        started = self._clock()
        kept = self._batcher.discard(lambda item: item.tp in revoked)
        # Not dispatched, so nothing was produced: they stay pending, the commit stops before
        # them and the new owner reads them again.
        self._set_in_flight(self._in_flight - len(kept))
        withdrawn = await self._drain(self.settings.shutdown_timeout_s, revoked)
        await self._commit(revoked)
        for tp in revoked:
            self._tracker.forget(tp)
            self._committed.pop(tp, None)
            self._lag_base.pop(tp, None)
        self.revokes += 1
        self.hooks.revoked(sorted((tp.topic, tp.partition) for tp in revoked))
        log.info(
            "partitions revoked",
            partitions=sorted(str(tp) for tp in revoked),
            dropped_undispatched=len(kept),
            withdrawn=withdrawn,
            took_s=round(self._clock() - started, 3),
        )

    def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """New partitions start paused while the in-flight window is full."""
        if self._in_flight >= self.settings.max_in_flight:
            self.consumer.pause(*assigned)
        log.info("partitions assigned", partitions=sorted(str(tp) for tp in assigned))


def _log_crash(task: asyncio.Task[None]) -> None:
    """Say loudly when a task ended by an exception (a routine should run until cancelled;
    ``run_until`` then stops the processor and re-raises)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("task died", task=task.get_name(), error=repr(task.exception()))


def _undecodable(
    tp: TopicPartition, record: Any, headers: tuple[tuple[str, bytes], ...], exc: DecodeError
) -> DeadLetter:
    """The dead letter of a record that does not decode (logged here, once)."""
    log.warning(
        "undecodable record",
        topic=tp.topic,
        partition=tp.partition,
        offset=record.offset,
        reason=exc.reason,
        error=str(exc),
    )
    return DeadLetter(
        topic=tp.topic,
        partition=tp.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=headers,
        stage="decode",
        error=exc,
        attempts=0,
    )


def _letter(item: Item, stage: str, error: BaseException | str) -> DeadLetter:
    """The dead letter of an item's original record."""
    return DeadLetter(
        topic=item.tp.topic,
        partition=item.tp.partition,
        offset=item.offset,
        key=item.key,
        value=item.value,
        headers=item.headers,
        stage=stage,
        error=error,
        attempts=item.attempts,
    )


def _offset_ranges(items: list[Item]) -> dict[str, str]:
    """``{"topic-partition": "first-last"}`` of a batch, for logs."""
    spans: dict[str, tuple[int, int]] = {}
    for item in items:
        key = f"{item.tp.topic}-{item.tp.partition}"
        low, high = spans.get(key, (item.offset, item.offset))
        spans[key] = (min(low, item.offset), max(high, item.offset))
    return {k: f"{lo}-{hi}" for k, (lo, hi) in spans.items()}


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, processor: StreamProcessor) -> None:
        self._processor = processor

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._processor.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._processor.on_assigned(set(assigned))


RAY_LOST_EXIT_CODE = 3
"""Exit status of ``molstream consume`` when the Ray cluster is lost (a supervisor restarts)."""


async def run_until_signal(
    settings: ConsumerSettings,
    hooks: Hooks | None = None,
    *,
    metrics_registry: CollectorRegistry | None = None,
) -> None:
    """Run a processor until SIGTERM or SIGINT, then shut it down gracefully. With
    ``settings.metrics_port``, serve ``metrics_registry`` and the health endpoints on it.

    A lost Ray cluster ends the process itself, with status :data:`RAY_LOST_EXIT_CODE`, after
    the bounded shutdown: Ray's client threads may be stuck until Ray aborts the process.
    """
    # Join Ray first: ray.init installs its own SIGTERM handler (which aborts the process);
    # ours, installed next, replaces it so that SIGTERM means a graceful shutdown.
    resolve_model_class(settings.model)  # a typo fails here, before Ray starts
    ray_owned = ray_runtime.connect(settings.ray_address, settings.ray_node_ip)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    processor = StreamProcessor(settings, hooks=hooks)
    status = StatusServer(
        host=settings.metrics_host,
        port=settings.metrics_port or 0,
        registry=metrics_registry,
        health=processor.health,
        max_poll_interval_s=settings.max_poll_interval_s,
    )
    try:
        if settings.metrics_port is not None:
            await status.start()  # probes answer during start-up too
        # A signal during start-up (e.g. while the broker is unreachable) stops it too.
        starting = asyncio.create_task(processor.start())
        signalled = asyncio.create_task(stop.wait())
        await asyncio.wait([starting, signalled], return_when=asyncio.FIRST_COMPLETED)
        signalled.cancel()
        if not starting.done():
            starting.cancel()  # start() cleans up after itself when cancelled
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            return
        starting.result()
        try:
            await processor.run_until(stop)
        finally:
            await processor.stop()
    except RayLostError as exc:
        log.error("Ray cluster lost: exiting", error=str(exc), exit_code=RAY_LOST_EXIT_CODE)
        _flush_standard_streams()
        os._exit(RAY_LOST_EXIT_CODE)
    finally:
        await status.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if ray_owned:
            ray_runtime.disconnect()


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
