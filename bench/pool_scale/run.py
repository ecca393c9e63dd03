"""One point of the pool-scale benchmark, measured (see :mod:`bench.pool_scale`)."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import psutil

from bench import runner
from bench.harness import create_topics, joined
from bench.pool_scale.points import (
    SETTLE_S,
    Options,
    Point,
    backlog_of,
    in_flight_of,
    worker_cpus,
)
from bench.pool_scale.probe import Probe, Recorder
from bench.profiling import beside, profiled
from consumer.dev.raycluster import FAST_HEALTH_CHECKS
from consumer.pool.replica import ReplicaState
from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings
from tests.harness import consumer_settings, each_synthetic_molecule, publish


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
    settings = _settings(point, opts, bootstrap, ray_address)
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
        result |= await _ready(proc, rec, point, opts, started)
        if "error" in result:
            return result
        probe = Probe(
            proc, rec, [psutil.Process(w.info.pid) for w in proc.pool.workers() if w.info]
        )
        result |= await _idle(probe, opts)
        backlog = backlog_of(point, opts)
        t_publish = time.monotonic()
        await publish(bootstrap, settings.input_topic, each_synthetic_molecule(backlog))
        result |= {"backlog": backlog, "publish_s": time.monotonic() - t_publish}
        await asyncio.sleep(SETTLE_S)
        actor_profile = beside(opts.profile_to, "actor") if opts.profile_actor else None
        actor = probe.actors[0].pid
        with (
            profiled(opts.profile_to, opts.steady_s),
            profiled(actor_profile, opts.steady_s, pid=actor, idle=True),
        ):
            result |= await probe.steady(point, opts, backlog, result["idle_consumer_cores"])
        counts = proc.pool.counts()
        result["workers_at_end"] = counts[ReplicaState.BUSY] + counts[ReplicaState.READY]
    return result


def _settings(point: Point, opts: Options, bootstrap: str, ray_address: str) -> ConsumerSettings:
    """The point's consumer: a fixed pool of its workers and slots on the one node."""
    return consumer_settings(
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


async def _ready(
    proc: StreamProcessor, rec: Recorder, point: Point, opts: Options, started: float
) -> dict[str, Any]:
    """Wait (up to ``ready_timeout_s``) for every worker to be ready; when they were, and an
    ``error`` if some never were."""
    deadline = started + opts.ready_timeout_s
    while len(rec.ready_at) < point.workers and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    ready = [t - started for t in rec.ready_at]
    result: dict[str, Any] = {
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


async def _idle(probe: Probe, opts: Options) -> dict[str, Any]:
    """The actors' memory, then CPU with nothing to do (after ``SETTLE_S``)."""
    memory = [p.memory_full_info() for p in probe.actors]
    result: dict[str, Any] = {
        "actor_rss_mb_mean": statistics.mean(m.rss / 2**20 for m in memory),
        "actor_pss_mb_mean": statistics.mean(m.pss / 2**20 for m in memory),
    }
    await asyncio.sleep(SETTLE_S)
    idle = await probe.idle(opts.idle_s)
    return result | {
        "idle_actors_cores": idle["actors_cores"],
        "idle_ms_per_s_per_actor": idle["actors_cores"] * 1000 / len(probe.actors),
        "idle_consumer_cores": idle["consumer_cores"],
        "idle_rest_cores": idle["rest_cores"],
        "idle_machine_cores": idle["machine_cores"],
        "idle_other_cores": max(0.0, idle["other_cores"]),
    }
