"""One point of the pool-scale benchmark, measured (see :mod:`bench.pool_scale`)."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench import runner
from bench.harness import create_topics, joined
from bench.monitor import LoadMonitor, descendants
from bench.pool_scale.points import (
    SETTLE_S,
    Options,
    Point,
    backlog_of,
    bound,
    in_flight_of,
    worker_cpus,
)
from bench.profiling import profiled
from consumer.dev.raycluster import FAST_HEALTH_CHECKS
from consumer.pool.replica import ReplicaState
from consumer.processor import StreamProcessor
from schemas import Status
from tests.harness import Counting, consumer_settings, each_synthetic_molecule, publish

# -- what is counted ----------------------------------------------------------------------------


class Recorder(Counting):
    """Counting, with predictions counted per batch (no per-molecule call in the consumer),
    batches, their summed round trips, and when each worker became ready."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0
        self.round_trip_s = 0.0
        self.ready_at: list[float] = []

    def predicted(self, statuses: Sequence[Status], end_to_end_s: Sequence[float | None]) -> None:
        self.predictions += len(statuses)

    def batch(self, worker: str, size: int, inference_s: float) -> None:
        super().batch(worker, size, inference_s)
        self.batches += 1
        self.round_trip_s += inference_s

    def worker_ready(self, model: str, model_version: str) -> None:
        self.ready_at.append(time.monotonic())


@dataclass(frozen=True)
class Counts:
    """The hooks' running counts at one moment."""

    at: float
    predictions: int
    batches: int
    round_trip_s: float

    @classmethod
    def of(cls, rec: Recorder) -> Counts:
        return cls(time.monotonic(), rec.predictions, rec.batches, rec.round_trip_s)


# -- one point ----------------------------------------------------------------------------------


def measure(point: Point, opts: Options) -> dict[str, Any]:
    """Run one point on a fresh broker and Ray cluster; its result as a JSON object."""
    system_config: dict[str, Any] = dict(FAST_HEALTH_CHECKS)
    if opts.startup_concurrency > 0:
        system_config["worker_maximum_startup_concurrency"] = opts.startup_concurrency
    with runner.broker_and_cluster(head_args={"_system_config": system_config}) as (
        broker,
        cluster,
    ):
        cluster.add_spot_node(num_cpus=opts.node_cpus)
        return asyncio.run(measure_on(point, opts, broker.bootstrap_servers, cluster.address))


async def measure_on(
    point: Point, opts: Options, bootstrap: str, ray_address: str
) -> dict[str, Any]:
    """Run one point on a running broker and Ray cluster (one node of ``opts.node_cpus``)."""
    await create_topics(bootstrap, ["molecules", "predictions", "molecules.dlq"])
    settings = consumer_settings(
        bootstrap,
        ray_address,
        worker_resources={},
        worker_num_cpus=worker_cpus(point, opts),
        worker_concurrency=point.slots,
        min_workers=point.workers,
        max_workers=point.workers,
        model_option={"per_molecule_ms": f"{point.per_molecule_ms:g}"},
        batch_size=opts.batch_size,
        max_in_flight=in_flight_of(point, opts),
        group_id="pool-scale",
        commit_interval_s=1.0,
        autoscale_interval_s=1.0,
    )
    result: dict[str, Any] = {
        "point": point.name,
        "workers": point.workers,
        "slots": point.slots,
        "per_molecule_ms": point.per_molecule_ms,
        "batch_size": opts.batch_size,
        "ideal_molecules_per_s": point.ideal_per_s,
        "worker_num_cpus": settings.worker_num_cpus,
        "max_in_flight": settings.max_in_flight,
    }
    rec = Recorder()
    started = time.monotonic()
    async with StreamProcessor(settings, hooks=rec) as proc:
        result["join_s"] = await joined(proc, 120.0)
        deadline = started + opts.ready_timeout_s
        while len(rec.ready_at) < point.workers and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        ready = [t - started for t in rec.ready_at]
        result |= {
            "ready_workers": len(ready),
            "first_ready_s": min(ready, default=None),
            "median_ready_s": statistics.median(ready) if ready else None,
            "ready_s": max(ready) if len(ready) == point.workers else None,
        }
        if len(ready) < point.workers:
            by_state = {str(k): v for k, v in proc.pool.counts().items()}
            result["error"] = (
                f"{len(ready)}/{point.workers} workers ready after {opts.ready_timeout_s:g} s "
                f"(by state: {by_state})"
            )
            return result
        probe = Probe(
            proc, rec, [psutil.Process(w.info.pid) for w in proc.pool.workers() if w.info]
        )
        memory = [p.memory_full_info() for p in probe.actors]
        result["actor_rss_mb_mean"] = statistics.mean(m.rss / 2**20 for m in memory)
        result["actor_pss_mb_mean"] = statistics.mean(m.pss / 2**20 for m in memory)
        await asyncio.sleep(SETTLE_S)
        idle = await probe.idle(opts.idle_s)
        result |= {
            "idle_actors_cores": idle["actors_cores"],
            "idle_ms_per_s_per_actor": idle["actors_cores"] * 1000 / len(probe.actors),
            "idle_consumer_cores": idle["consumer_cores"],
            "idle_rest_cores": idle["rest_cores"],
            "idle_machine_cores": idle["machine_cores"],
            "idle_other_cores": max(0.0, idle["other_cores"]),
        }
        backlog = backlog_of(point, opts)
        t_publish = time.monotonic()
        await publish(bootstrap, settings.input_topic, each_synthetic_molecule(backlog))
        result |= {"backlog": backlog, "publish_s": time.monotonic() - t_publish}
        await asyncio.sleep(SETTLE_S)
        with profiled(opts.profile_to, opts.steady_s):
            result |= await probe.steady(point, opts, backlog, idle["consumer_cores"])
        counts = proc.pool.counts()
        result["workers_at_end"] = counts[ReplicaState.BUSY] + counts[ReplicaState.READY]
    return result


@dataclass
class Probe:
    """Reads the running processor, its hooks and its actors' processes."""

    proc: StreamProcessor
    rec: Recorder
    actors: list[psutil.Process]
    me: psutil.Process = field(default_factory=psutil.Process)

    def monitor(self) -> LoadMonitor:
        """CPU from now to its next ``sample()``: ``actors``, ``rest`` (the broker and Ray's
        own processes: every other descendant of this one) and ``consumer`` (this process;
        reading the others, a few ms, counts as its CPU only at the close)."""
        actors = [p.pid for p in self.actors]
        return LoadMonitor(
            {
                "actors": lambda: actors,
                "rest": lambda: descendants(*actors),
                "consumer": lambda: [self.me.pid],
            }
        )

    async def idle(self, seconds: float) -> dict[str, float]:
        monitor = self.monitor()
        await asyncio.sleep(seconds)
        return monitor.sample()

    def sample(self) -> tuple[float, float, float]:
        """(molecules in flight, molecules computed and not yet acknowledged, busy slots)."""
        awaiting = self.rec.molecules - self.rec.predictions
        busy = sum(w.busy for w in self.proc.pool.workers())
        return float(self.proc.ledger.in_flight), float(awaiting), float(busy)

    async def steady(
        self, point: Point, opts: Options, backlog: int, idle_consumer: float
    ) -> dict[str, Any]:
        """The steady window: closes after ``steady_s`` or when the backlog left could no
        longer fill the in-flight window twice (the slots would start to wait).
        ``idle_consumer`` (cores) is the consumer's CPU with nothing to do: beyond it is the
        marginal cost of batches."""
        rec, low = self.rec, 2 * in_flight_of(point, opts)
        rss_mb = [self.me.memory_info().rss / 2**20]
        samples: list[tuple[float, float, float]] = []
        monitor, opened = self.monitor(), Counts.of(rec)
        counted = [(opened.at, float(opened.predictions))]
        end, next_rss = opened.at + opts.steady_s, opened.at + 1.0
        backlog_held = True
        while (now := time.monotonic()) < end:
            if backlog - rec.predictions <= low:
                backlog_held = False
                break
            counted.append((now, float(rec.predictions)))
            samples.append(self.sample())
            if now >= next_rss:
                rss_mb.append(self.me.memory_info().rss / 2**20)
                next_rss += 1.0
            await asyncio.sleep(0.1)
        closed = Counts.of(rec)
        cpu = monitor.sample()
        counted.append((closed.at, float(closed.predictions)))
        seconds = closed.at - opened.at
        batches = max(1, closed.batches - opened.batches)
        round_trip_s = closed.round_trip_s - opened.round_trip_s
        # Batches end in bursts (workers that started together finish together): the slope
        # of the count over every sample is steadier than the two ends of the window.
        per_s = statistics.linear_regression(*zip(*counted, strict=True)).slope
        ratio = per_s / point.ideal_per_s
        in_flight, awaiting, busy = (statistics.mean(c) for c in zip(*samples, strict=True))
        occupancy = busy / point.parallel
        consumer = cpu["consumer_cores"]
        machine_share = cpu["machine_cores"] / (os.cpu_count() or 1)
        target = point.target
        meets = None
        if target is not None:
            cpu_ok = target.consumer_cores is None or consumer < target.consumer_cores
            meets = ratio >= target.ratio and cpu_ok
        ms_per_batch = seconds / batches * 1000  # wall ms per batch; × cores = CPU ms
        return {
            "window_s": seconds,
            "backlog_held": backlog_held,
            "molecules": closed.predictions - opened.predictions,
            "molecules_per_s": per_s,
            "molecules_per_s_window_ends": (closed.predictions - opened.predictions) / seconds,
            "ratio_to_ideal": ratio,
            "batches": closed.batches - opened.batches,
            "round_trip_ms_mean": round_trip_s / batches * 1000,
            "model_ms_per_batch": point.per_molecule_ms * opts.batch_size,
            "slot_occupancy": occupancy,
            "slot_occupancy_from_round_trips": round_trip_s / seconds / point.parallel,
            "in_flight_mean": in_flight,
            "awaiting_ack_mean": awaiting,
            "consumer_cores": consumer,
            "consumer_cpu_ms_per_batch": consumer * ms_per_batch,
            "consumer_marginal_ms_per_batch": (consumer - idle_consumer) * ms_per_batch,
            "consumer_rss_mb_peak": max(rss_mb),
            "actors_cores": cpu["actors_cores"],
            "rest_cores": cpu["rest_cores"],
            "tree_cores": consumer + cpu["actors_cores"] + cpu["rest_cores"],
            "machine_cores": cpu["machine_cores"],
            "machine_busy_share": machine_share,
            "other_cores": max(0.0, cpu["other_cores"]),
            "load_avg_1m": cpu["load_avg_1m"],
            "bound": bound(
                consumer, machine_share, ratio, occupancy, awaiting / in_flight_of(point, opts)
            ),
            "target_ratio": target.ratio if target else None,
            "target_consumer_cores": target.consumer_cores if target else None,
            "meets_target": meets,
        }
