"""The output side: predictions and dead letters, each send acknowledged by the broker."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from consumer.errors import PublishRejectedError
from consumer.lifecycle import Lifecycle
from consumer.sink.acks import Enqueue, UntilAcked
from consumer.sink.outbox import Outbox
from consumer.state.items import HEADER_PREFIX, DeadLetter
from consumer.state.work_messages import OutputSpec, Produced
from schemas import PREDICTION_CODEC
from schemas.kafka import ProducerSettings
from schemas.kafka_refusals import is_refusal
from schemas.registry import SchemaRegistry
from schemas.wire import Encoder

log = structlog.get_logger(__name__)

VALUE_DROPPED = HEADER_PREFIX + "value_dropped"
HEADERS_DROPPED = HEADER_PREFIX + "headers_dropped"

Message = tuple[str, bytes | None, bytes | None, Any]
"""topic, key, value, headers"""


class Output(Lifecycle):
    """One idempotent-lifecycle producer for predictions and dead letters (acks=all).

    A send that fails (broker down, timeout) is sent again with backoff until it is
    acknowledged or the output is stopped: nothing is committed before its ack. A refusal
    (the right to write a topic withdrawn) is raised, and by :meth:`refused` too. Predictions
    are in Schema Registry framing when a ``registry`` is given (their schema registered at
    start), else in single-object encoding.
    """

    def __init__(
        self,
        kafka: ProducerSettings,
        *,
        output_topic: str,
        dlq_topic: str,
        on_error: Callable[[str], None] = lambda operation: None,
        retry_backoff_max_s: float = 5.0,
        registry: SchemaRegistry | None = None,
    ) -> None:
        self._kafka = kafka
        self._registry = registry
        self._encoder = Encoder(PREDICTION_CODEC)
        self._output_topic = output_topic
        self._dlq_topic = dlq_topic
        self._on_error = on_error
        self._backoff_max_s = retry_backoff_max_s
        self._producer: AIOKafkaProducer | None = None
        self._outbox = Outbox(self._send_partition)
        self._acks = UntilAcked(
            timeout_s=kafka.broker_timeout_s,
            backoff_max_s=retry_backoff_max_s,
            on_transient=self._report,
            on_refusal=self._refuse,
        )
        self._refused: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Register the prediction schema (when writing registry framing), then connect
        (bounded by the broker timeout)."""
        if self._producer is not None:
            return
        if self._registry is not None and self._encoder.schema_id is None:
            self._encoder = await Encoder.for_topic(
                PREDICTION_CODEC, self._output_topic, self._registry
            )
        self._producer = await self._kafka.started_producer()

    async def stop(self) -> None:
        """Flush what the producer holds and disconnect; safe twice. Sends still waiting in
        the outbox are cancelled: their batches were drained (acknowledged) or abandoned."""
        await self._outbox.stop()
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                async with asyncio.timeout(self._kafka.broker_timeout_s):
                    await producer.stop()
            except TimeoutError:
                log.warning("producer did not flush in time")
        refused, self._refused = self._refused, None
        if refused is not None and refused.done() and not refused.cancelled():
            refused.exception()  # seen: it was raised where it happened

    async def refused(self) -> None:
        """Wait until the brokers refuse a send or the output topic's metadata, then raise
        that refusal (a routine of the service: it ends the process, since no prediction or
        dead letter could be written until the rights are granted again)."""
        await asyncio.shield(self._refusal())

    def _refusal(self) -> asyncio.Future[None]:
        if self._refused is None:
            self._refused = asyncio.get_running_loop().create_future()
        return self._refused

    def _refuse(self, exc: BaseException) -> None:
        if not self._refusal().done():
            self._refusal().set_exception(exc)

    async def spec(self, max_smiles_length: int, max_id_length: int) -> OutputSpec:
        """How workers must write predictions now: the output topic's partitions (read once
        from the producer's metadata, which aiokafka keeps fresh) and the framing."""
        backoff = 0.1
        while not (partitions := self._known_partitions()):
            # Unknown yet (or the broker away): ask again with backoff, as a send would.
            try:
                async with asyncio.timeout(self._kafka.broker_timeout_s):
                    partitions = await self._started().partitions_for(self._output_topic)
                break
            except (KafkaError, TimeoutError) as exc:
                if is_refusal(exc):  # not allowed to write the output topic
                    self._refuse(exc)
                    raise
                self._report(exc)
                await asyncio.sleep(backoff)
                backoff = min(self._backoff_max_s, backoff * 2)
        return OutputSpec(
            tuple(sorted(partitions)), self._encoder.schema_id, max_smiles_length, max_id_length
        )

    async def predictions(self, produced: Mapping[int, Sequence[Produced]]) -> None:
        """Produce encoded predictions; returns when every one is acknowledged. They leave
        with those of concurrent batches, one record batch per output partition at a time
        (:class:`~consumer.sink.outbox.Outbox`); refusals for good are raised."""
        await self._outbox.put(produced)

    async def _send_partition(self, partition: int, records: list[Produced]) -> None:
        """Send records to one output partition with aiokafka's batch API (no per-record
        call or future); see :class:`~consumer.sink.acks.UntilAcked` (refusals name the very
        record objects)."""

        def batches(todo: list[Produced]) -> Iterator[tuple[list[Produced], Enqueue]]:
            producer = self._started()
            for chunk, builder in self._record_batches(todo):
                yield (
                    chunk,
                    functools.partial(
                        producer.send_batch, builder, self._output_topic, partition=partition
                    ),
                )

        await self._acks.send(records, batches)

    def _record_batches(self, records: list[Produced]) -> Iterator[tuple[list[Produced], Any]]:
        """``records`` in aiokafka record batches, each as full as the batch size allows."""
        producer = self._started()
        builder, start = producer.create_batch(), 0
        for i, (key, value, headers) in enumerate(records):
            if builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
                yield records[start:i], builder
                builder, start = producer.create_batch(), i
                builder.append(timestamp=None, key=key, value=value, headers=headers)
        yield records[start:], builder

    def _known_partitions(self) -> set[int] | None:
        known: set[int] | None = self._started().client.cluster.partitions_for_topic(
            self._output_topic
        )
        return known

    def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("output is not started")
        return self._producer

    async def dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Send dead letters byte for byte plus error headers; returns when acknowledged.

        One the broker refuses for good (its value too large, say) is sent again without its
        value, with a ``molstream.error.value_dropped`` header giving the value's size; if
        that is refused too, without the record's own headers as well
        (``molstream.error.headers_dropped`` gives how many), keeping the error headers.
        """
        messages = [(self._dlq_topic, d.key, d.value, d.kafka_headers()) for d in letters]
        try:
            await self._send_all(messages)
            return
        except PublishRejectedError as exc:
            log.error("dead letters refused, sending them without their values", error=str(exc))
            messages = [_without_value(message) for message, _ in exc.rejected]
        try:
            await self._send_all(messages)
        except PublishRejectedError as exc:
            log.error("dead letters refused, sending them without their headers", error=str(exc))
            await self._send_all([_without_headers(message) for message, _ in exc.rejected])

    async def _send_all(self, messages: list[Message]) -> None:
        """Send messages one ``send`` each (see :class:`~consumer.sink.acks.UntilAcked`)."""

        def each(todo: list[Message]) -> Iterator[tuple[list[Message], Enqueue]]:
            producer = self._started()
            for msg in todo:
                topic, key, value, headers = msg
                send = functools.partial(
                    producer.send, topic, value=value, key=key, headers=headers
                )
                yield [msg], send

        await self._acks.send(messages, each)

    def _report(self, exc: BaseException) -> None:
        log.warning("send failed, will retry", error=f"{type(exc).__name__}: {exc}")
        self._on_error("produce")


def _without_value(message: Message) -> Message:
    topic, key, value, headers = message
    return topic, key, None, [*headers, (VALUE_DROPPED, str(len(value or b"")).encode())]


def _without_headers(message: Message) -> Message:
    topic, key, value, headers = message
    own = [(k, v) for k, v in headers if k.startswith(HEADER_PREFIX)]
    dropped = len(headers) - len(own)
    return topic, key, value, [*own, (HEADERS_DROPPED, str(dropped).encode())]
