"""Intake: fetch, admit, batch; pause at the in-flight bound and keep polling while paused.

Records are fetched with aiokafka's ``getmany``, registered in the ledger and batched with
their values still bytes (workers decode them). A registry-framed value needs its writer
schema, looked up here (fetched once in a task when not cached); a value whose framing is
unreadable or needs a registry that is not configured goes to the dead-letter topic at once.
At ``max_in_flight`` the partitions are paused, not buffered, and still polled every second:
aiokafka drops a member that stops calling ``getmany`` for ``max_poll_interval_s``, however
long the pool takes (a Spot drought may last minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CorruptRecordException, KafkaError

from consumer import traced
from consumer.dispatch import Dispatcher
from consumer.hooks import Hooks
from consumer.input_settings import RecordLimits
from consumer.intake.batching import Batcher
from consumer.intake.fetch_recovery import FetchRecovery
from consumer.intake.screen import refusal, size_of
from consumer.reasons import DeadLetterStage
from consumer.state.items import DeadLetter, Item
from consumer.state.ledger import Ledger
from schemas import DecodeError
from schemas.errors import RegistryAuthError
from schemas.framing import REGISTRY_MAGIC
from schemas.kafka_refusals import is_refusal
from schemas.wire import SchemaPendingError, WriterSchemas

if TYPE_CHECKING:
    from consumer.ops.tracing import Tracer

log = structlog.get_logger(__name__)

FETCH_BACKOFF_S = 0.1
"""First wait after a failed fetch; it doubles up to 5 s."""

KEEPALIVE_POLL_S = 1.0
"""How often a paused consumer polls Kafka: aiokafka drops a member that stops polling."""


class Intake:
    """The fetch routine and what it feeds; ``last_poll`` tells the health endpoint."""

    def __init__(
        self,
        *,
        consumer: Callable[[], AIOKafkaConsumer],
        ledger: Ledger,
        dispatcher: Dispatcher,
        writers: WriterSchemas,
        batcher: Batcher[Item],
        limits: RecordLimits,
        hooks: Hooks,
        clock: Callable[[], float],
        tracer: Tracer | None = None,
    ) -> None:
        self._consumer = consumer
        self._ledger = ledger
        self._dispatcher = dispatcher
        self._writers = writers
        self.batcher = batcher
        self._limits = limits
        self._hooks = hooks
        self._clock = clock
        self._tracer = tracer
        self._backoff_s = FETCH_BACKOFF_S
        self._recovery = FetchRecovery(ledger)  # read_committed, as connect.group_consumer
        self.last_poll = clock()
        """When Kafka was last polled (or a connection attempted): liveness."""

    async def fetch_routine(self) -> None:
        """Fetch and dispatch until cancelled."""
        while True:
            await self._wait_for_room()
            deadline = self.batcher.deadline()
            wait_s = 0.2 if deadline is None else max(0.0, deadline - self._clock())
            await self._poll(wait_s, self._ledger.max_in_flight - self._ledger.in_flight)
            self._dispatcher.dispatch(self.batcher.due(self._clock()))

    def pause_if_full(self, assigned: set[TopicPartition]) -> None:
        """Newly assigned partitions start paused while the in-flight window is full."""
        if self._ledger.full:
            self._consumer().pause(*assigned)

    def drop_batched(self, partitions: set[TopicPartition] | None = None) -> int:
        """Drop the records still being batched (of ``partitions``, or all): never
        dispatched, so nothing was produced; the next owner reads them again."""
        dropped = self.batcher.discard(lambda i: partitions is None or i.tp in partitions)
        self._ledger.release((i.tp, i.offset) for i in dropped)
        return len(dropped)

    async def _poll(self, wait_s: float, max_records: int) -> None:
        """One ``getmany``, its records taken in. Every call counts as a poll for the group."""
        consumer = self._consumer()
        try:
            fetching = consumer.getmany(
                timeout_ms=int(wait_s * 1000), max_records=max(1, max_records)
            )
            fetched = await traced.stage(self._tracer, "molstream.fetch", fetching)
        except Exception as exc:
            if is_refusal(exc):  # not allowed to read (or join): ends the process
                raise
            if isinstance(exc, KafkaError) and not isinstance(exc, CorruptRecordException):
                # The broker is away or the group is rebalancing: keep trying, report it.
                log.warning("fetch failed, will retry", error=f"{type(exc).__name__}: {exc}")
                self._hooks.broker_error("fetch")
                await asyncio.sleep(self._backoff_s)
                self._backoff_s = min(5.0, self._backoff_s * 2)
                return
            # Records aiokafka cannot parse: get past them, nothing lost (fetch_recovery).
            for recovered in await self._recovery.recover(consumer, exc):
                self._accept(recovered.tp, recovered.records, recovered.letters)
            return
        self._backoff_s = FETCH_BACKOFF_S
        self.last_poll = self._clock()
        for tp, records in fetched.items():
            self._accept(tp, records)

    def _accept(
        self, tp: TopicPartition, records: Sequence[Any], letters: Sequence[DeadLetter] = ()
    ) -> None:
        """Fetched records of a partition (and dead letters in their offsets) enter."""
        now = time.time()
        sizes = [size_of(r) for r in records]
        # The record's Kafka timestamp dates the lag in seconds; -1: the producer set none.
        admitted = [
            (r.offset, r.timestamp / 1000 if r.timestamp > 0 else now, size)
            for r, size in zip(records, sizes, strict=True)
        ]
        unread = [(d.offset, now, len(d.key or b"") + len(d.value or b"")) for d in letters]
        self._ledger.admit(tp, sorted([*admitted, *unread]))
        for record, size in zip(records, sizes, strict=True):
            self._take(tp, record, size, now)
        for letter in letters:
            self._dispatcher.dead_letter(letter)
        self._hooks.consumed(len(records) + len(letters))

    async def _wait_for_room(self) -> None:
        if not self._ledger.full:
            return
        # What waits in the batcher counts as in flight: send it, or nothing frees room.
        self._dispatcher.dispatch(self.batcher.flush())
        consumer = self._consumer()
        while self._ledger.full:
            # Paused partitions return nothing but the poll keeps the member alive. A
            # partition assigned meanwhile is paused here too; if a rebalance slips records
            # in anyway, they are taken in.
            consumer.pause(*consumer.assignment())
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancel that
            # lands as room frees, and a shutdown would wait for this routine for good.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(KEEPALIVE_POLL_S):
                    await self._ledger.room.wait()
            if not self._ledger.full:
                break
            await self._poll(0.0, self._ledger.max_in_flight)
            # Records taken in here (a rebalance slipped them in, fetch recovery) may fill
            # the window alone: left batched, they would hold it for good.
            self._dispatcher.dispatch(self.batcher.flush())
        consumer.resume(*consumer.assignment())

    def _take(self, tp: TopicPartition, record: Any, size: int, now: float) -> None:
        """Batch a record; its value stays bytes (a worker decodes it). One over a bound is
        a dead letter at once. A registry-framed one needs its writer schema first: looked
        up here, fetched in a task if not cached."""
        item = Item(
            tp=tp,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key,
            value=record.value,
            headers=tuple(record.headers) if record.headers else (),
            writer=None,
            fetched_at=now,
        )
        refused = refusal(record, size, self._limits)
        if refused is not None:
            self._reject(item, refused)
            return
        value = record.value
        if item.headers or (value and value[0] == REGISTRY_MAGIC):
            try:
                item.writer = self._writers.writer(item.value, item.headers)
            except SchemaPendingError:
                self._ledger.to_work({tp: 1})
                self._dispatcher.spawn(self._take_pending(item))
                return
            except DecodeError as exc:
                self._reject(item, exc)
                return
        self._dispatcher.dispatch(self.batcher.add(item, self.last_poll))

    async def _take_pending(self, item: Item) -> None:
        """A record waiting for its writer schema (in flight, its offset pending)."""
        try:
            lookup = self._writers.fetch(item.value, item.headers)
            item.writer = await traced.stage(self._tracer, "molstream.schema_lookup", lookup)
        except RegistryAuthError:
            # Not this record's fault: it stays uncommitted while the registry's refusal
            # ends the process (StreamProcessor watches SchemaRegistry.refused).
            self._ledger.to_work({item.tp: 1}, -1)
            return
        except DecodeError as exc:
            self._ledger.to_work({item.tp: 1}, -1)  # the dead letter counts it from now on
            self._reject(item, exc)
            return
        self._ledger.to_work({item.tp: 1}, -1)  # the batch it joins counts it from now on
        batch = self.batcher.add(item, self._clock())
        if batch is None and self._ledger.full:
            # The fetch routine waits for room and sends nothing meanwhile: left batched,
            # records that alone fill the window would hold it for good.
            batch = self.batcher.flush()
        self._dispatcher.dispatch(batch)

    def _reject(self, item: Item, exc: DecodeError) -> None:
        log.warning(
            "undecodable record",
            topic=item.tp.topic,
            partition=item.tp.partition,
            offset=item.offset,
            reason=exc.reason,
            error=str(exc),
        )
        self._dispatcher.dead_letter(item.letter(DeadLetterStage.DECODE, exc))
