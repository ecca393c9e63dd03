"""What travels through the pipeline: a fetched record, what its batch became, its dead letter."""

from __future__ import annotations

import itertools
import operator
import time
from dataclasses import dataclass

from aiokafka import TopicPartition

from consumer.reasons import DeadLetterStage
from consumer.state.work_messages import Headers, OutputSpec, WorkRequest, WorkResult
from schemas.framing import Writer


@dataclass(slots=True)
class Item:
    """One fetched record on its way through the pipeline, its value still raw bytes."""

    tp: TopicPartition
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    writer: Writer | None
    """The writer schema of a registry-framed value (the worker decodes with it)."""
    fetched_at: float
    """Wall clock, seconds: the prediction's latency counts from it."""
    attempts: int = 0

    def letter(self, stage: DeadLetterStage, error: BaseException | str) -> DeadLetter:
        """The dead letter of this item's original record."""
        return DeadLetter(
            topic=self.tp.topic,
            partition=self.tp.partition,
            offset=self.offset,
            key=self.key,
            value=self.value,
            headers=self.headers,
            stage=stage,
            error=error,
            attempts=self.attempts,
        )


@dataclass(frozen=True, slots=True)
class Computed:
    """Some items of a batch and what they became (``result`` has their indices)."""

    items: list[Item]
    result: WorkResult
    failed: Exception | None = None
    """Why no worker computed them, when none did: their predictions are FAILED and their
    records dead-lettered too."""


def offset_ranges(items: list[Item]) -> dict[str, str]:
    """``{"topic-partition": "first-last"}`` of a batch, for logs (per run of a partition:
    a batch holds few)."""
    spans: dict[TopicPartition, tuple[int, int]] = {}
    for tp, run in itertools.groupby(items, key=operator.attrgetter("tp")):
        offsets = [i.offset for i in run]
        low, high = spans.get(tp, (offsets[0], offsets[0]))
        spans[tp] = (min(low, *offsets), max(high, *offsets))
    return {f"{tp.topic}-{tp.partition}": f"{lo}-{hi}" for tp, (lo, hi) in spans.items()}


def work_request(items: list[Item], spec: OutputSpec) -> WorkRequest:
    """What a worker receives for ``items``: their raw values and provenance."""
    now = time.time()
    return WorkRequest(
        values=[i.value for i in items],
        headers=[i.headers for i in items],
        writers=[i.writer for i in items],
        topics=[i.tp.topic for i in items],
        partitions=[i.tp.partition for i in items],
        offsets=[i.offset for i in items],
        ages_s=[now - i.fetched_at for i in items],
        attempts=max(i.attempts for i in items),
        spec=spec,
    )


HEADER_PREFIX = "molstream.error."


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An input record that could not become a prediction, with why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    stage: DeadLetterStage
    error: BaseException | str
    attempts: int

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        """The original headers, then ``molstream.error.*`` (Kafka Connect's convention)."""
        if isinstance(self.error, BaseException):
            cls, message = type(self.error).__name__, str(self.error)
        else:
            cls, message = "Error", self.error
        extra = {
            "stage": self.stage,
            "class": cls,
            "message": message[:4096],
            "attempts": str(self.attempts),
            "topic": self.topic,
            "partition": str(self.partition),
            "offset": str(self.offset),
        }
        # Error headers a record arrived with are dropped: a dead letter's are always ours.
        own = [(k, v) for k, v in self.headers if not k.startswith(HEADER_PREFIX)]
        return [*own, *((HEADER_PREFIX + k, v.encode()) for k, v in extra.items())]
