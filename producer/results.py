"""Reading predictions back from the output topic, as records or JSON lines."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas import PREDICTION_CODEC, DecodeError, Prediction
from schemas.kafka import KafkaSettings


def prediction_json(prediction: Prediction) -> str:
    """One JSON line with every field of a prediction."""

    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError(type(value).__name__)

    return json.dumps(dataclasses.asdict(prediction), default=default, sort_keys=False)


async def read_predictions(
    kafka: KafkaSettings,
    *,
    topic: str,
    from_beginning: bool = True,
    max_count: int | None = None,
    timeout_s: float = 10.0,
) -> AsyncIterator[Prediction | DecodeError]:
    """Predictions of ``topic`` (no consumer group), until ``max_count`` or ``timeout_s``
    without a new one. An undecodable record is yielded as its error, not raised."""
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), kafka.broker_timeout_s)
    try:
        # A topic that does not exist yet has no predictions yet: wait for it like for one.
        partitions = await _partitions(consumer, topic, timeout_s)
        consumer.assign(partitions)
        if from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
        count = 0
        last_seen = time.monotonic()
        while max_count is None or count < max_count:
            batch = await consumer.getmany(timeout_ms=200)
            if not batch:
                if time.monotonic() - last_seen > timeout_s:
                    return
                continue
            last_seen = time.monotonic()
            for records in batch.values():
                for record in records:
                    try:
                        yield PREDICTION_CODEC.decode(record.value)
                    except DecodeError as exc:
                        yield exc
                    count += 1
                    if max_count is not None and count >= max_count:
                        return
    finally:
        await consumer.stop()


async def _partitions(
    consumer: AIOKafkaConsumer, topic: str, timeout_s: float
) -> list[TopicPartition]:
    deadline = time.monotonic() + timeout_s
    while True:
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic!r} has no partitions after {timeout_s:g} s")
        await consumer._client.force_metadata_update()  # no public call refreshes one topic
        await asyncio.sleep(0.2)
