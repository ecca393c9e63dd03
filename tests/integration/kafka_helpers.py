"""Talking to the test broker from tests: publish, read back, committed offsets."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from consumer.raycluster import SPOT_RESOURCE
from consumer.settings import ConsumerSettings
from producer.publisher import Publisher
from producer.results import read_predictions
from schemas import DecodeError, Molecule, Prediction
from schemas.kafka import KafkaSettings, ProducerSettings


async def publish(
    bootstrap: str, topic: str, molecules: Iterable[Molecule]
) -> dict[TopicPartition, int]:
    """Publish and return the true end offset per partition (last acked offset + 1).

    Tansu's ListOffsets answers the base offset of the last batch + 1, so tests take end
    offsets from the acknowledgements instead.
    """
    futures = []
    async with Publisher(ProducerSettings(bootstrap_servers=bootstrap), topic=topic) as pub:
        for molecule in molecules:
            futures.append(await pub.publish(molecule))
    ends: dict[TopicPartition, int] = {}
    for fut in futures:
        meta = fut.result()
        tp = TopicPartition(meta.topic, meta.partition)  # type: ignore[attr-defined]
        ends[tp] = max(ends.get(tp, 0), meta.offset + 1)  # type: ignore[attr-defined]
    return ends


async def publish_raw(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]],
) -> None:
    """Publish raw (key, value, headers) records, acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=k, value=v, headers=h or None) for k, v, h in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str, timeout_s: float = 3.0) -> list[Prediction]:
    """Every prediction on ``topic`` (fails on an undecodable one)."""
    out = []
    async for p in read_predictions(
        KafkaSettings(bootstrap_servers=bootstrap), topic=topic, timeout_s=timeout_s
    ):
        assert not isinstance(p, DecodeError), p
        out.append(p)
    return out


async def read_raw(bootstrap: str, topic: str, timeout_s: float = 3.0) -> list[object]:
    """Every record of ``topic`` as aiokafka ConsumerRecords."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[object] = []
    try:
        last = time.monotonic()
        while time.monotonic() - last < timeout_s:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
                last = time.monotonic()
    finally:
        await consumer.stop()
    return records


async def committed(
    bootstrap: str, group: str, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, int | None]:
    """The group's committed offsets, as the broker has them."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return {tp: await consumer.committed(tp) for tp in partitions}
    finally:
        await consumer.stop()


async def wait_until(
    condition: Callable[[], bool], timeout_s: float, message: str, poll_s: float = 0.2
) -> None:
    """Poll ``condition`` until it holds; fail the test with ``message`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s: {message}")
        await asyncio.sleep(poll_s)


class OutputWatcher:
    """Reads an output topic in the background and counts predictions per id."""

    def __init__(self, bootstrap: str, topic: str = "predictions") -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self.ids: Counter[str] = Counter()
        self.predictions: list[Prediction] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> OutputWatcher:
        self._task = asyncio.create_task(self._watch_routine())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @property
    def total(self) -> int:
        """Predictions seen, duplicates included."""
        return sum(self.ids.values())

    def duplicates(self) -> int:
        """Predictions beyond the first for each id."""
        return sum(n - 1 for n in self.ids.values())

    async def _watch_routine(self) -> None:
        async for p in read_predictions(
            KafkaSettings(bootstrap_servers=self._bootstrap),
            topic=self._topic,
            timeout_s=float("inf"),
        ):
            assert not isinstance(p, DecodeError), p
            self.ids[p.id] += 1
            self.predictions.append(p)


def consume_command(bootstrap: str, ray_address: str, *extra: str) -> list[str]:
    """``molstream consume`` as a subprocess argv, joined to the test cluster's Spot nodes."""
    return [
        sys.executable,
        "-m",
        "consumer.cli",
        "consume",
        "--bootstrap-servers",
        bootstrap,
        "--ray-address",
        ray_address,
        "--worker-resources",
        '{"spot": 1}',
        "--log-format",
        "json",
        *extra,
    ]


def synthetic_molecules(count: int, prefix: str = "m") -> list[Molecule]:
    """Distinct ids, short valid SMILES."""
    return [Molecule(id=f"{prefix}{i}", smiles="C" * (1 + i % 30)) for i in range(count)]


def consumer_settings(bootstrap: str, ray_address: str, **overrides: object) -> ConsumerSettings:
    """Consumer settings for a test cluster's Spot nodes and the synthetic model; fast
    commits and scaling ticks. Overrides win."""
    base: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "ray_address": ray_address,
        "worker_resources": {SPOT_RESOURCE: 1},
        "model": "synthetic",
        "batch_size": 32,
        "commit_interval_s": 0.2,
        "autoscale_interval_s": 0.5,
    }
    return ConsumerSettings(**{**base, **overrides})  # type: ignore[arg-type]
