"""The Ray Data side of the comparison: the job that reads the topic, predicts and writes the
predictions back (``read_kafka`` where this Ray has it, else a consumer of our own)."""

from __future__ import annotations

import asyncio
import importlib
import os
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.vs_raydata.analyse import Outcome, measured
from bench.vs_raydata.run import (
    INPUT_TOPIC,
    PARTITIONS,
    MemorySampler,
    Watcher,
    end_offsets_total,
)
from consumer.dev.raycluster import SPOT_RESOURCE
from consumer.models.reference import ReferenceModel
from schemas import MOLECULE_CODEC, PREDICTION_CODEC, Prediction
from tests.harness import connected_cluster

if TYPE_CHECKING:
    from ray.data import Dataset


class Predict:
    """Ray Data UDF: decode molecules, run the reference model, encode ``Prediction`` records."""

    def __init__(self, topic: str) -> None:
        self.model = ReferenceModel()
        self.topic = topic
        self.worker = f"raydata-{os.getpid()}"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        mols = [MOLECULE_CODEC.decode(bytes(v)) for v in batch["value"]]
        results = self.model.predict([m.smiles for m in mols])
        now = datetime.now(UTC)
        now_ms = now.timestamp() * 1000
        values = [
            PREDICTION_CODEC.encode(
                Prediction(
                    id=m.id,
                    smiles=m.smiles,
                    status=r.status,
                    outputs=r.outputs,
                    error=r.error,
                    model=self.model.name,
                    model_version=self.model.version,
                    worker=self.worker,
                    attempts=1,
                    source_topic=self.topic,
                    source_partition=int(p),
                    source_offset=int(o),
                    produced_at=now,
                    latency_ms=now_ms - float(ts),
                )
            )
            for m, r, p, o, ts in zip(
                mols, results, batch["partition"], batch["offset"], batch["timestamp"], strict=True
            )
        ]
        keys = [m.id.encode() for m in mols]
        return {"key": np.array(keys, dtype=object), "value": np.array(values, dtype=object)}


class KafkaSink:
    """Ray Data UDF used as a sink: sends each batch with aiokafka (acks=all), returns a count."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="kafka-sink", daemon=True).start()
        self._producer: AIOKafkaProducer = self._run(self._start(bootstrap))

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @staticmethod
    async def _start(bootstrap: str) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        return producer

    async def _send(self, keys: list[bytes], values: list[bytes]) -> int:
        futures = [
            await self._producer.send(self.topic, value=v, key=k)
            for k, v in zip(keys, values, strict=True)
        ]
        await asyncio.gather(*futures)
        return len(futures)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        keys = [bytes(k) for k in batch["key"]]
        sent = self._run(self._send(keys, [bytes(v) for v in batch["value"]]))
        return {"sent": np.array([sent], dtype=np.int64)}


async def read_topic(bootstrap: str, count: int, timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """The input topic's records, read with a plain consumer (no group) until ``count``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), 30)
    rows: list[dict[str, Any]] = []
    try:
        partitions = [TopicPartition(INPUT_TOPIC, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        async with asyncio.timeout(timeout_s):
            while len(rows) < count:
                batch = await consumer.getmany(timeout_ms=200, max_records=5000)
                for tp, records in batch.items():
                    rows += [
                        {
                            "key": r.key,
                            "value": r.value,
                            "partition": tp.partition,
                            "offset": r.offset,
                            "timestamp": r.timestamp,
                        }
                        for r in records
                    ]
    finally:
        await consumer.stop()
    return rows


def choose_reader(requested: str, bootstrap: str, count: int) -> tuple[str, str]:
    """``read_kafka`` or ``consumer``, and why."""
    if requested != "auto":
        return requested, "requested"
    try:
        importlib.import_module("confluent_kafka")
    except ImportError:
        return "consumer", "confluent-kafka (needed by ray.data.read_kafka) is not installed"
    held = asyncio.run(end_offsets_total(bootstrap))
    if held < count:
        return "consumer", (
            f"the broker's high watermarks add up to {held} for {count} published records; "
            "read_kafka stops at the high watermark"
        )
    return "read_kafka", f"the high watermarks cover the {count} published records"


def _dataset(reader: str, bootstrap: str, count: int, t0: float) -> tuple[Dataset, float | None]:
    """The input topic as a Ray dataset, and how long reading it took (None for
    ``read_kafka``, which reads as the job runs)."""
    import ray

    if reader == "read_kafka":
        # Zero CPUs: the actor pool holds every CPU of the cluster, and a read task waiting
        # for one would wait forever.
        return ray.data.read_kafka(INPUT_TOPIC, bootstrap_servers=bootstrap, num_cpus=0), None
    rows = asyncio.run(read_topic(bootstrap, count))
    read_s = time.time() - t0
    return ray.data.from_items(rows), read_s


def _predict_and_send(
    ds: Dataset, bootstrap: str, topic: str, workers: int, batch_size: int
) -> int:
    """Run the job over ``ds``: predict on ``workers`` Spot actors, send to ``topic``; the
    number of predictions sent."""
    import ray

    predictions = ds.map_batches(
        Predict,
        fn_constructor_kwargs={"topic": INPUT_TOPIC},
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
        resources={SPOT_RESOURCE: 1},
    )
    sent_counts = predictions.map_batches(
        KafkaSink,
        fn_constructor_kwargs={"bootstrap": bootstrap, "topic": topic},
        batch_size=None,
        compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=0,
    )
    return sum(int(b["sent"].sum()) for b in sent_counts.iter_batches(batch_size=None))


def run_raydata(
    bootstrap: str,
    broker_pid: int,
    count: int,
    workers: int,
    batch_size: int,
    reader: str,
    why: str,
) -> Outcome:
    """The job through Ray Data on a fresh cluster."""
    import ray

    topic = "predictions-raydata"
    with connected_cluster(workers):
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        watcher = Watcher(bootstrap, topic, count)
        try:
            with MemorySampler({broker_pid, watcher.proc.pid}) as sampler:
                t0 = time.time()
                ds, read_s = _dataset(reader, bootstrap, count, t0)
                sent = _predict_and_send(ds, bootstrap, topic, workers, batch_size)
                driver_done = time.time() - t0
            return measured(
                "ray_data",
                count,
                t0,
                watcher.result(),
                sampler,
                {
                    "reader": reader,
                    "reader_reason": why,
                    "read_s": read_s,
                    "sent": sent,
                    "driver_done_s": driver_done,
                    "batch_size": batch_size,
                    "sink": "map_batches(KafkaSink): one zero-CPU actor, aiokafka, acks=all",
                },
            )
        finally:
            watcher.stop()
