"""What travels through the pipeline: a fetched molecule, its outcome, its dead letter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from consumer.models import ModelResult
from consumer.output import DeadLetter, Headers
from consumer.reasons import DeadLetterStage
from consumer.replica import Replica
from schemas import DecodeError, Molecule


@dataclass(slots=True)
class Item:
    """One fetched, decoded molecule on its way through the pipeline."""

    tp: TopicPartition
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: Headers
    molecule: Molecule
    fetched_at: float
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
class Outcome:
    """What became of one item: its model result and the replica that computed it."""

    item: Item
    result: ModelResult
    replica: Replica | None
    error_stage: DeadLetterStage | None = None


def undecodable(tp: TopicPartition, record: Any, headers: Headers, exc: DecodeError) -> DeadLetter:
    """The dead letter of a record that does not decode."""
    return DeadLetter(
        topic=tp.topic,
        partition=tp.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=headers,
        stage=DeadLetterStage.DECODE,
        error=exc,
        attempts=0,
    )


def offset_ranges(items: list[Item]) -> dict[str, str]:
    """``{"topic-partition": "first-last"}`` of a batch, for logs."""
    spans: dict[str, tuple[int, int]] = {}
    for item in items:
        key = f"{item.tp.topic}-{item.tp.partition}"
        low, high = spans.get(key, (item.offset, item.offset))
        spans[key] = (min(low, item.offset), max(high, item.offset))
    return {k: f"{lo}-{hi}" for k, (lo, hi) in spans.items()}
