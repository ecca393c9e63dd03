"""What the integration tests (and the benchmarks) share: molecules, counting hooks, settings,
topic helpers and a connected local Ray cluster. It never imports the benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from consumer.dev.raycluster import SPOT_RESOURCE, LocalCluster
from consumer.hooks import Hooks
from consumer.settings import ConsumerSettings
from producer.publisher import Publisher
from producer.readers import read_molecules
from producer.results import read_predictions
from schemas import DecodeError, Molecule, Prediction, Status
from schemas.kafka import KafkaSettings, ProducerSettings
from schemas.registry_settings import RegistrySettings

if TYPE_CHECKING:
    pass

# -- molecules and the machine ----------------------------------------------------------------


def nci(count: int) -> list[Molecule]:
    """The first ``count`` NCI molecules shipped with RDKit (4,999 at most)."""
    from rdkit import RDConfig

    return list(read_molecules(Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"))[:count]


def synthetic_molecules(count: int, prefix: str = "m") -> list[Molecule]:
    """Distinct ids, short valid SMILES."""
    return list(each_synthetic_molecule(count, prefix))


def each_synthetic_molecule(count: int, prefix: str = "m") -> Iterator[Molecule]:
    """:func:`synthetic_molecules` one at a time (a million need no list)."""
    return (Molecule(id=f"{prefix}{i}", smiles="C" * (1 + i % 30)) for i in range(count))


# -- hooks ------------------------------------------------------------------------------------


class Counting(Hooks):
    """Counts acknowledged predictions, molecules computed per worker and when the first
    records were fetched (wall clock)."""

    def __init__(self) -> None:
        self.predictions = 0
        self.by_worker: Counter[str] = Counter()
        self.first_fetch: float | None = None

    @property
    def molecules(self) -> int:
        """Molecules the workers computed (a batch computed twice counts twice)."""
        return sum(self.by_worker.values())

    def consumed(self, count: int) -> None:
        if self.first_fetch is None and count:
            self.first_fetch = time.time()

    def prediction(self, status: Status, end_to_end_s: float | None) -> None:
        self.predictions += 1

    def batch(self, worker: str, size: int, inference_s: float) -> None:
        self.by_worker[worker] += size


# -- settings and processes -------------------------------------------------------------------


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


def connect_driver(address: str) -> None:
    """Make this process a Ray driver of the cluster at ``address``, on 127.0.0.1, quiet."""
    import ray

    ray.init(
        address=address,
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )


@contextlib.contextmanager
def connected_cluster(nodes: int, *, wait_for_nodes: bool = True) -> Iterator[LocalCluster]:
    """A fresh local Ray head plus ``nodes`` one-CPU Spot nodes, this process its driver;
    everything stopped (ours only, by pid) on the way out. With ``wait_for_nodes`` false the
    nodes are started without waiting for each (wait for their resources yourself)."""
    import ray

    cluster = LocalCluster()
    try:
        cluster.start()
        for _ in range(nodes):
            cluster.add_spot_node(wait=wait_for_nodes)
        connect_driver(cluster.address)
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.stop()


# -- topics -----------------------------------------------------------------------------------


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
        _advance(ends, fut.result())
    return ends


def _advance(ends: dict[TopicPartition, int], meta: Any) -> None:
    """Move ``ends`` past an acknowledged record (aiokafka's RecordMetadata)."""
    tp = TopicPartition(meta.topic, meta.partition)
    ends[tp] = max(ends.get(tp, 0), meta.offset + 1)


@dataclass(frozen=True)
class Sent:
    """What :func:`publish_raw` sent."""

    records: int
    seconds: float
    """From the first send to the last acknowledgement."""
    ends: dict[TopicPartition, int]
    """The true end offset per partition (last acked offset + 1)."""


async def publish_raw(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]],
    *,
    producer_kwargs: Mapping[str, Any] | None = None,
) -> Sent:
    """Publish raw (key, value, headers) records, one ``send`` each, all acknowledged.

    ``records`` may be lazy: it is consumed inside the timing. The producer is aiokafka's
    with ``acks=all`` and ``producer_kwargs``; no future is kept per record, so a million
    records cost no memory here. Raises the first failed send's error at the end.
    """
    kwargs = {"bootstrap_servers": bootstrap, "acks": "all", **(producer_kwargs or {})}
    producer = AIOKafkaProducer(**kwargs)
    await producer.start()
    ends: dict[TopicPartition, int] = {}
    errors: list[BaseException] = []
    outstanding, count = 0, 0
    drained = asyncio.Event()

    def acked(fut: asyncio.Future[Any]) -> None:
        nonlocal outstanding
        outstanding -= 1
        if fut.cancelled():
            errors.append(asyncio.CancelledError())
        elif (error := fut.exception()) is not None:
            errors.append(error)
        else:
            _advance(ends, fut.result())
        if outstanding == 0:
            drained.set()

    try:
        started = time.perf_counter()
        for key, value, headers in records:
            fut = await producer.send(topic, key=key, value=value, headers=headers or None)
            outstanding, count = outstanding + 1, count + 1
            drained.clear()
            fut.add_done_callback(acked)
        if outstanding:
            await drained.wait()
        seconds = time.perf_counter() - started
    finally:
        await producer.stop()
    if errors:
        raise errors[0]
    return Sent(records=count, seconds=seconds, ends=ends)


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
    """Poll ``condition`` until it holds; raise AssertionError with ``message`` after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s: {message}")
        await asyncio.sleep(poll_s)


class OutputWatcher:
    """Reads an output topic in the background and counts predictions per id."""

    def __init__(
        self, bootstrap: str, topic: str = "predictions", registry_url: str | None = None
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._registry = RegistrySettings(schema_registry_url=registry_url)
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

    @property
    def failed(self) -> BaseException | None:
        """Why the background reader stopped, if it did."""
        if self._task is None or not self._task.done() or self._task.cancelled():
            return None
        return self._task.exception()

    def duplicates(self) -> int:
        """Predictions beyond the first for each id."""
        return sum(n - 1 for n in self.ids.values())

    async def _watch_routine(self) -> None:
        async for p in read_predictions(
            KafkaSettings(bootstrap_servers=self._bootstrap),
            topic=self._topic,
            timeout_s=float("inf"),
            registry=self._registry,
        ):
            assert not isinstance(p, DecodeError), p
            self.ids[p.id] += 1
            self.predictions.append(p)
