"""Kafka alone, no molstream: records produced one ``send`` each with molstream's producer
settings, every ack awaited, then read back and decoded (step 1 of :mod:`bench.throughput`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer

from bench.harness import create_topics
from schemas import MOLECULE_CODEC, Molecule
from schemas.kafka import ProducerSettings
from tests.harness import publish_raw

if TYPE_CHECKING:
    from bench.end_to_end import Env


async def kafka_alone(env: Env, topic: str, molecules: list[Molecule]) -> dict[str, Any]:
    """Records/s of plain aiokafka on this broker: produce (encode, send, every ack awaited)
    and consume (getmany, decode)."""
    await create_topics(env.bootstrap, [topic])
    settings = ProducerSettings(bootstrap_servers=env.bootstrap)
    records: Iterator[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = (
        (m.id.encode(), MOLECULE_CODEC.encode(replace(m, submitted_at=datetime.now(UTC))), [])
        for m in molecules
    )
    with env.watch() as monitor:
        sent = await publish_raw(
            env.bootstrap, topic, records, producer_kwargs=settings.producer_kwargs()
        )
        count, size, consume_s = await _read_back(env, topic, sent.records)
    return {
        "records": sent.records,
        "value_bytes_mean": size / count,
        "producer": {k: settings.producer_kwargs()[k] for k in ("acks", "compression_type")}
        | {"linger_ms": settings.linger_ms},
        "produce_records_per_s": sent.records / sent.seconds,
        "consume_records_per_s": count / consume_s,
        "machine_load": monitor.summary(),
    }


async def _read_back(env: Env, topic: str, records: int) -> tuple[int, int, float]:
    """Read ``records`` records of ``topic`` from the start, decoding each: (records, value
    bytes, seconds)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=env.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    count, size = 0, 0
    try:
        started = time.perf_counter()
        async with asyncio.timeout(300):
            while count < records:
                for part in (await consumer.getmany(timeout_ms=500)).values():
                    for record in part:
                        MOLECULE_CODEC.decode(record.value)
                        count += 1
                        size += len(record.value)
        consume_s = time.perf_counter() - started
    finally:
        await consumer.stop()
    return count, size, consume_s
