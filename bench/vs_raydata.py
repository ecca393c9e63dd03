"""Ray Data against molstream: one bounded job, the same model, the same workers.

Run: ``.venv/bin/python -m bench.vs_raydata [--molecules 10000] [--workers 2]``. Ray Data needs
``ray[data]`` (pandas, pyarrow, fsspec), which ``requirements.lock`` does not carry: install them
with ``.venv/bin/pip install -e '.[bench]'``. Prints a table and writes ``vs_raydata.json``
(``--out``, default bench/results).

The job: ``--molecules`` NCI molecules (RDKit's ``first_5K.smi``, repeated with distinct ids)
are published to a topic first; then each system, on its own fresh local Ray cluster with
``--workers`` one-CPU Spot nodes, turns them into predictions of the reference model on an
output topic of its own:

- molstream: a :class:`~consumer.processor.StreamProcessor` with ``--workers`` workers
  (``min_workers = max_workers``, ``worker_resources={"spot": 1}``), micro-batches of
  ``--batch-size``; t = 0 is its start, so the consumer-group join is in its time (reported
  apart as ``group_join_s``).
- Ray Data: read the topic → ``map_batches`` with a callable class holding a ``ReferenceModel``
  (``compute=ActorPoolStrategy(size=workers)``, ``num_cpus=1``, ``resources={"spot": 1}``,
  ``batch_size``) that returns Avro ``Prediction`` records → a second ``map_batches`` stage,
  one zero-CPU actor holding an aiokafka producer (``acks=all``), that sends each batch and
  returns the count: the sink. ``write_kafka`` is not used: it needs confluent-kafka, which
  the lock does not carry. The read: Ray 2.60 has ``ray.data.read_kafka`` (bounded, on
  confluent-kafka), but it stops each partition at the broker's high watermark, and the
  embedded broker (Tansu) can report high watermarks far below what a partition holds (1 for a
  partition of 250 records, seen here), so it would read part of the topic. ``--reader auto``
  therefore checks the watermarks and, when they do not cover what was published (or
  confluent-kafka is missing), reads the topic with a plain aiokafka consumer (no group, every
  partition from the beginning, until all published records are read) into
  ``ray.data.from_items``. ``--reader read_kafka`` forces Ray's reader.

Measured for both, t = 0 being the start of the job (the driver is already connected to Ray):

- total time: until the last prediction arrives at a watcher, a separate process that reads
  the output topic from the beginning and timestamps the first and the last record; molecules/s
  is molecules / total time;
- time to first prediction: until the watcher sees the first record; ``molecules/s after
  first`` is molecules / (last - first arrival), the rate once predictions flow;
- peak memory: every 0.5 s (psutil, the copy bundled with Ray) the memory of this driver
  process and of every process under it (the Ray head and node processes it started, and the
  Ray worker processes under those), the broker and the watcher excepted. ``driver +
  workers`` is the driver plus the Ray worker processes (command line ``ray::...`` or
  ``default_worker.py``, idle ones included); ``all Ray`` adds the Ray system processes (GCS,
  raylets, agents). Both as RSS, which counts a shared page (the object store's shared memory,
  shared libraries) once in every process that touched it, and as PSS, which splits it among
  them; the JSON has every process at the peak.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.console import Console
from rich.table import Table

from bench.throughput import nci
from consumer.devbroker import EmbeddedBroker
from consumer.hooks import Hooks
from consumer.logs import configure_logging
from consumer.models.reference import ReferenceModel
from consumer.processor import StreamProcessor
from consumer.raycluster import SPOT_RESOURCE, LocalCluster
from consumer.settings import ConsumerSettings
from producer.publisher import Publisher
from schemas import MOLECULE_CODEC, PREDICTION_CODEC, Molecule, Prediction, Status
from schemas.kafka import ProducerSettings

JSON_NAME = "vs_raydata.json"
INPUT_TOPIC = "molecules"
PARTITIONS = 4


@dataclass
class Outcome:
    """One system on the job."""

    system: str
    molecules: int
    predictions_seen: int
    total_s: float
    molecules_per_s: float
    first_prediction_s: float
    molecules_per_s_after_first: float
    peak_driver_workers_mb: float
    peak_all_ray_mb: float
    peak_driver_workers_pss_mb: float
    peak_all_ray_pss_mb: float
    detail: dict[str, Any]


def molecules(count: int) -> list[Molecule]:
    """``count`` NCI molecules, the file repeated, every id distinct."""
    base = nci(10**9)
    return [
        Molecule(id=f"{m.id}-{i // len(base)}", smiles=m.smiles)
        for i, m in ((i, base[i % len(base)]) for i in range(count))
    ]


# -- measuring -------------------------------------------------------------------------------


class MemorySampler:
    """Samples the memory of this process tree every ``interval_s`` in a thread; keeps peaks.

    Per process both RSS and PSS (shared pages divided among the processes sharing them).
    """

    def __init__(self, exclude: set[int], interval_s: float = 0.5) -> None:
        import ray  # noqa: F401  (puts Ray's bundled psutil on sys.path)

        self._psutil: Any = importlib.import_module("psutil")
        self._exclude = exclude
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self.peaks: dict[str, float] = {}
        self.breakdown: list[dict[str, Any]] = []
        self.samples = 0

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.sample()

    def _processes(self) -> Iterator[tuple[str, Any]]:
        ps = self._psutil
        skip: set[int] = set()
        for pid in self._exclude:
            with contextlib.suppress(ps.Error):
                skip |= {pid, *(c.pid for c in ps.Process(pid).children(recursive=True))}
        me = ps.Process()
        yield "driver", me
        for proc in me.children(recursive=True):
            if proc.pid not in skip:
                yield "", proc

    def sample(self) -> None:
        """One sample: MB per kind of process, and the peaks."""
        ps = self._psutil
        sums = {f"{m}_{k}": 0.0 for m in ("rss", "pss") for k in ("driver", "workers", "system")}
        rows: list[dict[str, Any]] = []
        for kind, proc in self._processes():
            try:
                mem = proc.memory_full_info()
                cmd = " ".join(proc.cmdline())
                name = proc.name()
            except ps.Error:
                continue  # ended between the listing and the reading
            if not kind:
                kind = "workers" if _is_worker(name, cmd) else "system"
            label = cmd[:60] if kind == "workers" else name
            rss, pss = mem.rss / 2**20, mem.pss / 2**20
            sums[f"rss_{kind}"] += rss
            sums[f"pss_{kind}"] += pss
            rows.append({"kind": kind, "process": label, "rss_mb": rss, "pss_mb": pss})
        for m in ("rss", "pss"):
            sums[f"{m}_driver+workers"] = sums[f"{m}_driver"] + sums[f"{m}_workers"]
            sums[f"{m}_all"] = sums[f"{m}_driver+workers"] + sums[f"{m}_system"]
        self.samples += 1
        if sums["rss_driver+workers"] > self.peaks.get("rss_driver+workers", -1.0):
            self.breakdown = sorted(rows, key=lambda r: -float(r["rss_mb"]))
        for key, value in sums.items():
            self.peaks[key] = max(self.peaks.get(key, 0.0), value)


def _is_worker(name: str, cmd: str) -> bool:
    """A Ray worker process (tasks and actors, idle ones too), not a raylet or a node agent."""
    if name == "raylet" or any(agent in cmd for agent in _AGENTS):
        return False
    return cmd.startswith("ray::") or "default_worker.py" in cmd


_AGENTS = ("DashboardAgent", "RuntimeEnvAgent", "dashboard/agent.py", "runtime_env/agent")


class Watcher:
    """A separate process that reads a topic and timestamps its first and last records."""

    def __init__(self, bootstrap: str, topic: str, count: int, idle_s: float = 20.0) -> None:
        cmd = [sys.executable, "-m", "bench.vs_raydata", "--watch", topic]
        cmd += ["--bootstrap", bootstrap, "--molecules", str(count), "--idle-s", str(idle_s)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.kill()
            raise RuntimeError(f"watcher did not start: {line!r}")

    def result(self, timeout_s: float = 120.0) -> dict[str, Any]:
        """``first`` and ``last`` (wall clock) and ``count``, once the watcher is done."""
        out, _ = self.proc.communicate(timeout=timeout_s)
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result

    def stop(self) -> None:
        """End the watcher process if it still runs (by its pid)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def watch(bootstrap: str, topic: str, count: int, idle_s: float) -> dict[str, Any]:
    """Read ``topic`` from the beginning until ``count`` records or ``idle_s`` without one."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), 30)
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        print("ready", flush=True)
        first: float | None = None
        last: float | None = None
        seen = 0
        idle_since = time.monotonic()
        while seen < count and time.monotonic() - idle_since < idle_s:
            batch = await consumer.getmany(timeout_ms=100)
            if not batch:
                continue
            now = time.time()
            first = first or now
            last = now
            idle_since = time.monotonic()
            seen += sum(len(records) for records in batch.values())
        return {"first": first, "last": last, "count": seen}
    finally:
        await consumer.stop()


# -- the broker and the cluster --------------------------------------------------------------


async def create_topics(bootstrap: str, topics: list[str]) -> None:
    """Create the topics (``PARTITIONS`` partitions each)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await asyncio.wait_for(admin.start(), 30)
    try:
        new = [NewTopic(t, PARTITIONS, 1) for t in topics]
        await asyncio.wait_for(admin.create_topics(new), 30)
    finally:
        await admin.close()


async def publish(bootstrap: str, mols: list[Molecule]) -> None:
    """Publish the job's molecules to the input topic."""
    async with Publisher(ProducerSettings(bootstrap_servers=bootstrap), topic=INPUT_TOPIC) as pub:
        await pub.publish_all(mols)


async def end_offsets_total(bootstrap: str) -> int:
    """What the broker says the input topic holds (sum of its high watermarks)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await asyncio.wait_for(consumer.start(), 30)
    try:
        ends = await consumer.end_offsets([TopicPartition(INPUT_TOPIC, p) for p in range(4)])
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


@contextlib.contextmanager
def ray_cluster(workers: int) -> Iterator[LocalCluster]:
    """A fresh head plus ``workers`` one-CPU Spot nodes, this driver connected."""
    import ray

    cluster = LocalCluster()
    try:
        cluster.start()
        for _ in range(workers):
            cluster.add_spot_node()
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


def measured(
    system: str,
    count: int,
    t0: float,
    watcher: Watcher,
    sampler: MemorySampler,
    detail: dict[str, Any],
) -> Outcome:
    """An outcome from the watcher's timestamps and the sampler's peaks."""
    seen = watcher.result()
    first = seen["first"] - t0 if seen["first"] else float("nan")
    total = seen["last"] - t0 if seen["last"] else float("nan")
    return Outcome(
        system=system,
        molecules=count,
        predictions_seen=int(seen["count"]),
        total_s=total,
        molecules_per_s=seen["count"] / total if seen["last"] else 0.0,
        first_prediction_s=first,
        molecules_per_s_after_first=(
            seen["count"] / (total - first) if seen["last"] and total > first else 0.0
        ),
        peak_driver_workers_mb=sampler.peaks["rss_driver+workers"],
        peak_all_ray_mb=sampler.peaks["rss_all"],
        peak_driver_workers_pss_mb=sampler.peaks["pss_driver+workers"],
        peak_all_ray_pss_mb=sampler.peaks["pss_all"],
        detail={
            **detail,
            "memory_samples": sampler.samples,
            "memory_peaks_mb": sampler.peaks,
            "processes_at_peak": sampler.breakdown,
        },
    )


# -- molstream -------------------------------------------------------------------------------


class _Count(Hooks):
    def __init__(self) -> None:
        self.predictions = 0
        self.first_fetch: float | None = None

    def consumed(self, count: int) -> None:
        if self.first_fetch is None and count:
            self.first_fetch = time.time()

    def prediction(self, status: Status, end_to_end_s: float | None) -> None:
        self.predictions += 1


async def _molstream_job(bootstrap: str, count: int, workers: int, batch_size: int) -> float:
    settings = ConsumerSettings(
        bootstrap_servers=bootstrap,
        input_topic=INPUT_TOPIC,
        output_topic="predictions-molstream",
        dlq_topic="molecules-dlq-molstream",
        group_id="vs-raydata",
        model="reference",
        worker_resources={SPOT_RESOURCE: 1},
        min_workers=workers,
        max_workers=workers,
        batch_size=batch_size,
        log_level="warning",
    )
    hooks = _Count()
    processor = StreamProcessor(settings, hooks=hooks)
    started = time.time()
    async with processor:
        async with asyncio.timeout(600):
            while not processor.consumer.assignment():
                await asyncio.sleep(0.01)
            joined = time.time() - started
            while hooks.predictions < count:
                await asyncio.sleep(0.02)
    return joined


def run_molstream(
    bootstrap: str, broker_pid: int, count: int, workers: int, batch_size: int
) -> Outcome:
    """The job through molstream on a fresh cluster."""
    topic = "predictions-molstream"
    with ray_cluster(workers):
        watcher = Watcher(bootstrap, topic, count)
        try:
            with MemorySampler({broker_pid, watcher.proc.pid}) as sampler:
                t0 = time.time()
                joined = asyncio.run(_molstream_job(bootstrap, count, workers, batch_size))
                driver_done = time.time() - t0
            return measured(
                "molstream",
                count,
                t0,
                watcher,
                sampler,
                {"group_join_s": joined, "driver_done_s": driver_done, "batch_size": batch_size},
            )
        finally:
            watcher.stop()


# -- Ray Data --------------------------------------------------------------------------------


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
    with ray_cluster(workers):
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        watcher = Watcher(bootstrap, topic, count)
        try:
            with MemorySampler({broker_pid, watcher.proc.pid}) as sampler:
                t0 = time.time()
                read_s: float | None = None
                if reader == "read_kafka":
                    # Zero CPUs: the actor pool holds every CPU of the cluster, and a read
                    # task waiting for one would wait forever.
                    ds = ray.data.read_kafka(INPUT_TOPIC, bootstrap_servers=bootstrap, num_cpus=0)
                else:
                    rows = asyncio.run(read_topic(bootstrap, count))
                    read_s = time.time() - t0
                    ds = ray.data.from_items(rows)
                    del rows
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
                sent = sum(int(b["sent"].sum()) for b in sent_counts.iter_batches(batch_size=None))
                driver_done = time.time() - t0
            return measured(
                "ray_data",
                count,
                t0,
                watcher,
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


# -- main ------------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(outcomes: list[Outcome]) -> Table:
    table = Table(title="same bounded job: molstream vs Ray Data")
    for header in (
        "system",
        "predictions",
        "total s",
        "molecules/s",
        "first prediction s",
        "molecules/s after first",
        "group join s",
        "read s",
        "peak RSS MB driver+workers",
        "all Ray",
        "peak PSS MB driver+workers",
        "all Ray",
    ):
        table.add_column(header, justify="right")
    for o in outcomes:
        table.add_row(
            o.system,
            f"{o.predictions_seen}/{o.molecules}",
            f"{o.total_s:.1f}",
            f"{o.molecules_per_s:.0f}",
            f"{o.first_prediction_s:.2f}",
            f"{o.molecules_per_s_after_first:.0f}",
            _seconds(o.detail.get("group_join_s")),
            _seconds(o.detail.get("read_s")),
            f"{o.peak_driver_workers_mb:.0f}",
            f"{o.peak_all_ray_mb:.0f}",
            f"{o.peak_driver_workers_pss_mb:.0f}",
            f"{o.peak_all_ray_pss_mb:.0f}",
        )
    return table


def main() -> None:
    """Publish once, run both systems, print the table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=10_000)
    parser.add_argument(
        "--workers", type=int, default=2, help="one-CPU Spot nodes, one worker each"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--reader", choices=("auto", "read_kafka", "consumer"), default="auto")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--watch", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--idle-s", type=float, default=20.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.watch:
        result = asyncio.run(watch(args.bootstrap, args.watch, args.molecules, args.idle_s))
        print(json.dumps(result), flush=True)
        return
    try:
        importlib.import_module("ray.data")
    except ImportError as exc:
        sys.exit(
            f"Ray Data cannot be imported ({exc}): it needs ray[data] (pandas, pyarrow, "
            "fsspec), not in requirements.lock. "
            "install them with: .venv/bin/pip install -e '.[bench]'"
        )
    configure_logging("console", "warning")
    console = Console()
    started = time.monotonic()
    mols = molecules(args.molecules)
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        outputs = ["predictions-molstream", "predictions-raydata"]
        asyncio.run(create_topics(bootstrap, [INPUT_TOPIC, *outputs]))
        asyncio.run(publish(bootstrap, mols))
        reader, why = choose_reader(args.reader, bootstrap, len(mols))
        console.print(f"published {len(mols)} molecules; Ray Data reads with {reader}: {why}")
        assert broker.pid is not None
        outcomes = [
            run_molstream(bootstrap, broker.pid, len(mols), args.workers, args.batch_size),
            run_raydata(
                bootstrap, broker.pid, len(mols), args.workers, args.batch_size, reader, why
            ),
        ]
    elapsed = time.monotonic() - started
    Console(width=max(console.width, 180)).print(_table(outcomes))
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "config": {
            "molecules": len(mols),
            "workers": args.workers,
            "batch_size": args.batch_size,
            "model": "reference",
            "reader": reader,
            "reader_reason": why,
        },
        "elapsed_s": elapsed,
        "outcomes": [asdict(o) for o in outcomes],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / JSON_NAME).write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out / JSON_NAME} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
