"""Reading the dead-letter topic and publishing the chosen dead letters back (the I/O of
``molstream redrive``; the rules are :mod:`producer.redrive`).

It reads with a consumer group of its own and commits a fetch's offsets only after every
record it published from that fetch is acknowledged, so a second run publishes nothing twice
and a crash republishes at most one fetch. It stops once every partition is read to its high
watermark (from the fetch responses: some brokers answer ListOffsets wrongly) or after
``idle_timeout_s`` without a record. A dry run publishes and commits nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from producer.redrive import (
    DeadLetterView,
    Selection,
    Verdict,
    redriven_headers,
    target_topic,
    verdict,
)
from schemas.kafka import ProducerSettings


@dataclass
class Summary:
    """What a run did: counts by verdict, and the redriven ones by stage and error class."""

    verdicts: Counter[str] = field(default_factory=Counter)
    redriven_by: Counter[tuple[str, str]] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        """The summary as ``--json`` prints it."""
        return {
            **{v.value: self.verdicts[v.value] for v in Verdict},
            "by_stage_and_class": [
                {"stage": stage, "class": cls, "count": n}
                for (stage, cls), n in sorted(self.redriven_by.items())
            ],
        }


@dataclass(frozen=True, slots=True)
class RedriveRun:
    """One ``molstream redrive``: where to read, what to choose, where to send."""

    dlq_topic: str
    group_id: str
    chosen: Selection
    topic: str | None = None
    dry_run: bool = False
    idle_timeout_s: float = 10.0


async def redrive(
    kafka: ProducerSettings,
    run: RedriveRun,
    *,
    on_record: Callable[[Verdict, Any], None] = lambda verdict, record: None,
) -> Summary:
    """Redrive the chosen dead letters of ``run.dlq_topic``; ``on_record`` sees each."""
    consumer = AIOKafkaConsumer(
        run.dlq_topic,
        **kafka.client_kwargs(),
        group_id=run.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = None if run.dry_run else await kafka.started_producer()
    summary = Summary()
    try:
        async with asyncio.timeout(kafka.broker_timeout_s):
            await consumer.start()
        last_record = time.monotonic()
        while time.monotonic() - last_record < run.idle_timeout_s:
            fetched = await consumer.getmany(timeout_ms=500)
            records = [r for rs in fetched.values() for r in rs]
            if records:
                last_record = time.monotonic()
                await _redrive_fetch(records, run, producer, summary, on_record)
                if producer is not None:
                    async with asyncio.timeout(kafka.broker_timeout_s):
                        await consumer.commit()
            if await _caught_up(consumer):
                break
    finally:
        await consumer.stop()
        if producer is not None:
            await producer.stop()
    return summary


async def _redrive_fetch(
    records: list[Any],
    run: RedriveRun,
    producer: AIOKafkaProducer | None,
    summary: Summary,
    on_record: Callable[[Verdict, Any], None],
) -> None:
    """Judge one fetch's dead letters and publish the chosen ones, all acknowledged."""
    acks = []
    for record in records:
        letter = DeadLetterView(record.timestamp, list(record.headers or ()))
        judged = verdict(letter, run.chosen, run.topic)
        summary.verdicts[judged.value] += 1
        on_record(judged, record)
        if judged is not Verdict.REDRIVEN:
            continue
        summary.redriven_by[(letter.error("stage") or "", letter.error("class") or "")] += 1
        if producer is not None:
            acks.append(
                await producer.send(
                    target_topic(letter, run.topic),
                    key=record.key,
                    value=record.value,
                    headers=redriven_headers(letter.headers),
                )
            )
    await asyncio.gather(*acks)  # raises the first refusal: nothing of this fetch is committed


async def _caught_up(consumer: AIOKafkaConsumer) -> bool:
    """Whether every assigned partition is read to its high watermark (known after a fetch)."""
    assigned = consumer.assignment()
    if not assigned:
        return False
    for tp in assigned:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True
