"""What benchmarks and tests share: molecules, counting and timing hooks, topic helpers, a
connected local Ray cluster, the machine's description and a sampler of its load.

The tests import it (tests sit above bench); it never imports the tests.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import functools
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

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
    from consumer.processor import StreamProcessor

# -- molecules and the machine ----------------------------------------------------------------


def nci(count: int) -> list[Molecule]:
    """The first ``count`` NCI molecules shipped with RDKit (4,999 at most)."""
    from rdkit import RDConfig

    return list(read_molecules(Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"))[:count]


def nci_repeated(count: int, prefix: str = "") -> list[Molecule]:
    """``count`` NCI molecules, the file repeated, every id distinct (``prefix`` before it)."""
    base = nci(10**9)
    repeats = (count + len(base) - 1) // len(base)
    return [
        Molecule(id=f"{prefix}{m.id}-{r}", smiles=m.smiles) for r in range(repeats) for m in base
    ][:count]


def synthetic_molecules(count: int, prefix: str = "m") -> list[Molecule]:
    """Distinct ids, short valid SMILES."""
    return list(each_synthetic_molecule(count, prefix))


def each_synthetic_molecule(count: int, prefix: str = "m") -> Iterator[Molecule]:
    """:func:`synthetic_molecules` one at a time (a million need no list)."""
    return (Molecule(id=f"{prefix}{i}", smiles="C" * (1 + i % 30)) for i in range(count))


def machine_info() -> dict[str, object]:
    """What a result file says about the machine it was measured on."""
    return {"cpus": os.cpu_count(), "python": platform.python_version()}


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


class Timing(Hooks):
    """Acknowledged predictions with their timing: the first and the last acknowledgement
    (``perf_counter``) with this process's CPU time at each, every record-timestamp-to-ack
    latency, and each batch's size and inference time. :meth:`reset` starts a new window."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything recorded so far."""
        self.count = 0
        self.first: float | None = None
        self.first_count = 0
        self.last = self.first_cpu = self.last_cpu = 0.0
        self.latencies_s: list[float] = []
        self.batch_sizes: list[int] = []
        self.inference_s: list[float] = []

    def predicted(self, statuses: Sequence[Status], end_to_end_s: Sequence[float | None]) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.count += len(statuses)
        if self.first is None:
            self.first, self.first_cpu, self.first_count = now, cpu, self.count
        self.last, self.last_cpu = now, cpu
        self.latencies_s.extend(s for s in end_to_end_s if s is not None)

    def batch(self, worker: str, size: int, inference_s: float) -> None:
        self.batch_sizes.append(size)
        self.inference_s.append(inference_s)

    @property
    def steady(self) -> tuple[int, float, float]:
        """After the first acknowledgement: (predictions, wall seconds, CPU seconds of this
        process)."""
        assert self.first is not None, "nothing acknowledged yet"
        return self.count - self.first_count, self.last - self.first, self.last_cpu - self.first_cpu


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
        ray.init(
            address=cluster.address,
            _node_ip_address="127.0.0.1",
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.stop()


@contextlib.asynccontextmanager
async def consumer_process(
    argv: Sequence[str], log_path: Path
) -> collections.abc.AsyncIterator[asyncio.subprocess.Process]:
    """A process (``molstream consume``, say) writing its output to ``log_path``; killed on
    the way out if it is still running."""
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def terminate(process: asyncio.subprocess.Process, timeout_s: float = 120.0) -> int:
    """Stop a process as a supervisor would (SIGTERM); its exit code."""
    process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), timeout_s)


async def joined(processor: StreamProcessor, timeout_s: float = 60.0) -> float:
    """Wait until ``processor`` has partitions assigned; seconds it took."""
    started = time.monotonic()
    async with asyncio.timeout(timeout_s):
        while not processor.consumer.assignment():
            await asyncio.sleep(0.01)
    return time.monotonic() - started


# -- topics -----------------------------------------------------------------------------------


async def create_topics(bootstrap: str, topics: Iterable[str], partitions: int = 4) -> None:
    """Create ``topics`` with ``partitions`` partitions each."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await asyncio.wait_for(admin.start(), 30)
    try:
        new = [NewTopic(t, partitions, 1) for t in topics]
        await asyncio.wait_for(admin.create_topics(new), 30)
    finally:
        await admin.close()


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


# -- load on the machine ----------------------------------------------------------------------


def descendants(*exclude: int) -> list[int]:
    """Pids of this process's descendants, less ``exclude`` and their descendants."""
    skip = set(exclude)
    for pid in exclude:
        with contextlib.suppress(psutil.Error):
            skip |= {c.pid for c in psutil.Process(pid).children(recursive=True)}
    return [c.pid for c in psutil.Process().children(recursive=True) if c.pid not in skip]


def _machine_busy_s() -> float:
    """CPU seconds the machine spent busy since boot, all cores (guest time is in user)."""
    t = psutil.cpu_times()
    not_busy = ("idle", "iowait", "guest", "guest_nice")
    return float(sum(t) - sum(getattr(t, name, 0.0) for name in not_busy))


class LoadMonitor:
    """CPU (in cores) and RSS of named groups of processes and the machine's busy cores,
    sampled every ``interval_s`` in a thread (``with``) or on demand (:meth:`sample`).

    ``groups`` maps a name to a function giving the group's pids at each sample; a process
    counts from the sample after the one that first saw it. ``other_cores`` is the machine's
    busy cores less every group's: load this run did not start (or did not name).
    """

    def __init__(
        self, groups: Mapping[str, Callable[[], Iterable[int]]], interval_s: float = 1.0
    ) -> None:
        self._groups = groups
        self._interval_s = interval_s
        self._procs: dict[int, Any] = {}
        self._cpu_s: dict[int, float] = {}
        self._started = self._at = time.monotonic()
        self._busy_s = _machine_busy_s()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-monitor", daemon=True)
        self.samples: list[dict[str, float]] = []
        for pids in groups.values():  # first readings: the first sample measures from here
            for pid in pids():
                self._read(pid)

    def __enter__(self) -> LoadMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()  # the tail: even a run shorter than the interval has a sample

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.sample()

    def _read(self, pid: int) -> tuple[float, int] | None:
        """(CPU seconds of the interval, RSS bytes) of ``pid``; None if it is gone."""
        try:
            proc = self._procs.get(pid) or self._procs.setdefault(pid, psutil.Process(pid))
            with proc.oneshot():
                times, rss = proc.cpu_times(), proc.memory_info().rss
        except psutil.Error:
            self._procs.pop(pid, None)
            return None
        cpu_s = times.user + times.system
        previous = self._cpu_s.get(pid)
        self._cpu_s[pid] = cpu_s
        return (0.0 if previous is None else cpu_s - previous), rss

    def sample(self) -> dict[str, float]:
        """One sample (appended to :attr:`samples`): per group ``<name>_cores`` and
        ``<name>_rss_mb``; ``machine_cores``, ``other_cores`` and the 1-minute load average."""
        now, busy_s = time.monotonic(), _machine_busy_s()
        wall = max(now - self._at, 1e-9)
        row = {"t_s": now - self._started, "machine_cores": (busy_s - self._busy_s) / wall}
        ours = 0.0
        for name, pids in self._groups.items():
            readings = [r for r in map(self._read, pids()) if r is not None]
            row[f"{name}_cores"] = sum(cpu for cpu, _ in readings) / wall
            row[f"{name}_rss_mb"] = sum(rss for _, rss in readings) / 2**20
            ours += row[f"{name}_cores"]
        row["other_cores"] = row["machine_cores"] - ours
        row["load_avg_1m"] = os.getloadavg()[0]
        self._at, self._busy_s = now, busy_s
        self.samples.append(row)
        return row

    def summary(self) -> dict[str, Any]:
        """Mean and max of every series, and how often the machine's cores were all busy."""
        cpus = os.cpu_count() or 1
        keys = [k for k in (self.samples[0] if self.samples else {}) if k != "t_s"]
        out: dict[str, Any] = {"cpus": cpus, "samples": len(self.samples)}
        for key in keys:
            values = [s[key] for s in self.samples]
            out[key] = {"mean": sum(values) / len(values), "max": max(values)}
        busy = [s["machine_cores"] for s in self.samples]
        out["saturated_share"] = sum(b >= 0.9 * cpus for b in busy) / len(busy) if busy else 0.0
        return out


def process_monitor(named: Mapping[str, int | None], interval_s: float = 1.0) -> LoadMonitor:
    """A :class:`LoadMonitor` with a group per named process (this one may be among them)
    and ``ray``: every other descendant of this process, i.e. the local Ray cluster's."""
    pids = {name: pid for name, pid in named.items() if pid}
    groups: dict[str, Callable[[], Iterable[int]]] = {
        name: functools.partial(list, [pid]) for name, pid in pids.items()
    }
    others = [pid for pid in pids.values() if pid != os.getpid()]
    groups["ray"] = lambda: descendants(*others)
    return LoadMonitor(groups, interval_s)
