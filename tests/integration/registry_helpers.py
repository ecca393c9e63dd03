"""Publishing and reading as confluent-kafka's own clients do: a ``Producer`` with
``AvroSerializer``, a ``Consumer`` with ``AvroDeserializer``, through the test registry."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from typing import Any, cast

from aiokafka import TopicPartition
from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka import TopicPartition as CkTopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from schemas import Molecule
from schemas.codec import schema_text

Raw = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]
"""key, value, headers"""

Read = tuple[bytes | None, dict[str, Any], list[tuple[str, bytes]]]
"""key, value as AvroDeserializer returns it, headers"""


def _ck(headers: list[tuple[str, bytes]]) -> list[tuple[str, str | bytes | None]]:
    """Headers as confluent-kafka types them (values may also be str or None)."""
    return cast(list[tuple[str, str | bytes | None]], headers)


def molecule_serializer(
    registry_url: str, schema: str = "molecule", conf: dict[str, Any] | None = None
) -> AvroSerializer:
    """confluent-kafka's serializer for molecules with one of our shipped schemas."""
    serializer: AvroSerializer = AvroSerializer(
        SchemaRegistryClient({"url": registry_url}),
        schema_text(schema),
        lambda molecule, ctx: asdict(molecule),
        conf=conf,
    )
    return serializer


def serialize(
    serializer: AvroSerializer, topic: str, molecule: Molecule, headers: list[tuple[str, bytes]]
) -> bytes:
    """The value ``serializer`` writes for ``molecule`` (it may add to ``headers``)."""
    value = serializer(molecule, SerializationContext(topic, MessageField.VALUE, _ck(headers)))
    assert value is not None
    return bytes(value)


def _produce(bootstrap: str, topic: str, records: list[Raw]) -> dict[TopicPartition, int]:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "partitioner": "murmur2_random"}
    )
    ends: dict[TopicPartition, int] = {}
    errors: list[KafkaError] = []

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            errors.append(error)
            return
        tp = TopicPartition(message.topic(), message.partition())
        ends[tp] = max(ends.get(tp, 0), (message.offset() or 0) + 1)

    for key, value, headers in records:
        producer.produce(
            topic, key=key, value=value, headers=_ck(headers) or None, on_delivery=delivered
        )
        producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0 and not errors, (remaining, errors)
    return ends


async def produce_confluent(
    bootstrap: str, topic: str, records: list[Raw]
) -> dict[TopicPartition, int]:
    """Publish with a confluent-kafka ``Producer``; the end offset per partition (from the
    delivery reports: Tansu's ListOffsets answers a batch's base offset)."""
    return await asyncio.to_thread(_produce, bootstrap, topic, records)


def _read(
    bootstrap: str, topic: str, registry_url: str, count: int, timeout_s: float
) -> list[Read]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "registry-reader", "enable.auto.commit": False}
    )
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))
    out: list[Read] = []
    try:
        deadline = time.monotonic() + timeout_s
        metadata = consumer.list_topics(topic, timeout=10)
        while not metadata.topics[topic].partitions and time.monotonic() < deadline:
            time.sleep(0.2)
            metadata = consumer.list_topics(topic, timeout=10)
        consumer.assign(
            [CkTopicPartition(topic, p, 0) for p in sorted(metadata.topics[topic].partitions)]
        )
        while len(out) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            headers = cast(list[tuple[str, bytes]], list(message.headers() or []))
            ctx = SerializationContext(topic, MessageField.VALUE, _ck(headers))
            value = deserializer(message.value(), ctx)
            assert isinstance(value, dict)
            out.append((message.key(), value, headers))
    finally:
        consumer.close()
    return out


async def read_confluent(
    bootstrap: str, topic: str, registry_url: str, count: int, timeout_s: float = 120
) -> list[Read]:
    """Up to ``count`` records of ``topic`` from the beginning, read by a confluent-kafka
    ``Consumer`` and decoded by ``AvroDeserializer``: (key, value dict, headers)."""
    return await asyncio.to_thread(_read, bootstrap, topic, registry_url, count, timeout_s)
