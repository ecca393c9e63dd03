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
from schemas.registry import SchemaRegistry
from schemas.registry_settings import RegistrySettings
from schemas.wire import Decoder


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
    registry: RegistrySettings | None = None,
) -> AsyncIterator[Prediction | DecodeError]:
    """Predictions of ``topic`` (no consumer group), until ``max_count`` or ``timeout_s``
    without a new one. An undecodable record is yielded as its error, not raised. Both
    framings are read; registry-framed ones need ``registry`` settings with a URL."""
    schema_registry = (
        SchemaRegistry(registry, give_up_after_s=registry.schema_registry_timeout_s)
        if registry is not None and registry.schema_registry_url is not None
        else None
    )
    decoder = Decoder(PREDICTION_CODEC, schema_registry)
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), enable_auto_commit=False)
    async with asyncio.timeout(kafka.broker_timeout_s):
        await consumer.start()
    try:
        if schema_registry is not None:
            await schema_registry.start()
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
                        yield await decoder.decode_async(record.value, record.headers)
                    except DecodeError as exc:
                        yield exc
                    count += 1
                    if max_count is not None and count >= max_count:
                        return
    finally:
        await consumer.stop()
        if schema_registry is not None:
            await schema_registry.stop()


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
