"""Ray Data against molstream, run: the job through each system, the watcher, the memory sampler."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.harness import joined
from bench.vs_raydata.analyse import Outcome, measured
from consumer.dev.raycluster import SPOT_RESOURCE
from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings
from producer.publisher import Publisher
from schemas import Molecule
from schemas.kafka import ProducerSettings
from tests.harness import Counting, connected_cluster, nci

INPUT_TOPIC = "molecules"

PARTITIONS = 4


def molecules(count: int) -> list[Molecule]:
    """``count`` NCI molecules, the file repeated, every id distinct."""
    base = nci(10**9)
    return [
        Molecule(id=f"{m.id}-{i // len(base)}", smiles=m.smiles)
        for i, m in ((i, base[i % len(base)]) for i in range(count))
    ]


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
    hooks = Counting()
    processor = StreamProcessor(settings, hooks=hooks)
    async with processor:
        join_s = await joined(processor, 600)
        async with asyncio.timeout(600):
            while hooks.predictions < count:
                await asyncio.sleep(0.02)
    return join_s


def run_molstream(
    bootstrap: str, broker_pid: int, count: int, workers: int, batch_size: int
) -> Outcome:
    """The job through molstream on a fresh cluster."""
    topic = "predictions-molstream"
    with connected_cluster(workers):
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
                watcher.result(),
                sampler,
                {"group_join_s": joined, "driver_done_s": driver_done, "batch_size": batch_size},
            )
        finally:
            watcher.stop()
