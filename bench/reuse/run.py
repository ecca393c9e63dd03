"""Worker reuse, run: Approach 1 (a task per input) and molstream's pool on a real cluster."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from bench.harness import create_topics, joined
from bench.reuse.analyse import Measured, Schedule, Work, measure
from consumer.dev.raycluster import SPOT_RESOURCE
from consumer.hooks import Hooks
from consumer.models import load_model
from consumer.pool.replica_pool import ReplicaPool
from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings
from producer.publisher import Publisher
from schemas import Molecule, Status
from schemas.kafka import ProducerSettings
from tests.harness import connected_cluster

SMILES = "CC(=O)Oc1ccccc1C(=O)O"


def draw_schedules(
    nodes: int, max_starts: Sequence[float], draws: int, seed: int
) -> list[Schedule]:
    """``draws`` provisioning draws per max start, p_i ~ Uniform(0, S) as in the simulation."""
    rng = np.random.default_rng(seed)
    return [
        Schedule(s, d, tuple(float(p) for p in rng.uniform(0.0, s, size=nodes)))
        for s in max_starts
        for d in range(draws)
    ]


def wait_for_spot_nodes(nodes: int, timeout_s: float = 60.0) -> None:
    """Block until ``nodes`` Spot nodes have registered with Ray."""
    import ray

    deadline = time.monotonic() + timeout_s
    while ray.cluster_resources().get(SPOT_RESOURCE, 0) < nodes:  # type: ignore[no-untyped-call]
        if time.monotonic() > deadline:
            raise RuntimeError(f"Spot nodes did not register in {timeout_s:g} s")
        time.sleep(0.1)


class Gates:
    """Each Spot node held whole by a placement group until its arrival time."""

    def __init__(self, nodes: int) -> None:
        import ray
        from ray.util.placement_group import placement_group, placement_group_table

        bundle = {"CPU": 1.0, SPOT_RESOURCE: 1.0}
        self._groups = [placement_group([bundle], strategy="STRICT_PACK") for _ in range(nodes)]
        ray.get([g.ready() for g in self._groups], timeout=60)
        self.node_ids = [
            str(placement_group_table(g)["bundles_to_node_id"][0]) for g in self._groups
        ]
        if len(set(self.node_ids)) != nodes:
            raise RuntimeError(f"placement groups share nodes: {self.node_ids}")
        self._open = [False] * nodes

    def index(self, node_id: str) -> int:
        """The arrival-order index of a Ray node id."""
        return self.node_ids.index(node_id)

    def open(self, i: int) -> None:
        """Let node ``i``'s capacity be used (the node arrives)."""
        from ray.util.placement_group import remove_placement_group

        if not self._open[i]:
            remove_placement_group(self._groups[i])
            self._open[i] = True


class _Arrivals:
    """The nodes' arrival times on a schedule: each node's gate opened once its time has
    come, and when that was (``since_t0``, read after the gate opened)."""

    def __init__(self, gates: Gates, at: Sequence[float], since_t0: Callable[[], float]) -> None:
        self._gates = gates
        self._at = at
        self._since_t0 = since_t0
        self.opened = [False] * len(at)
        self.arrived = [float("nan")] * len(at)

    def open_due(self) -> None:
        """Open the gate of every node whose arrival time has passed."""
        now = self._since_t0()
        for i, at in enumerate(self._at):
            if not self.opened[i] and now >= at:
                self._gates.open(i)
                self.opened[i] = True
                self.arrived[i] = self._since_t0()


def load_and_predict(options: dict[str, str], smiles: str) -> tuple[str, float, float]:
    """The seed's Approach 1 task: load the model, predict one input (wall-clock times)."""
    import ray

    started = time.time()
    model = load_model("synthetic", options)
    model.predict([smiles])
    return ray.get_runtime_context().get_node_id(), started, time.time()


def run_approach1(schedule: Schedule, tu_s: float, options: dict[str, str]) -> Measured:
    """N tasks at t = 0; nodes arrive on the schedule; one input per task."""
    import ray

    nodes = len(schedule.provision_tu)
    with connected_cluster(nodes, wait_for_nodes=False):
        wait_for_spot_nodes(nodes)
        gates = Gates(nodes)
        task = ray.remote(num_cpus=1, resources={SPOT_RESOURCE: 1}, max_retries=0)(load_and_predict)
        t0 = time.time()
        arrivals = _Arrivals(gates, schedule.arrival_s(tu_s), lambda: time.time() - t0)
        pending = [task.remote(options, SMILES) for _ in range(nodes)]
        results: list[tuple[str, float, float]] = []
        end = 0.0
        deadline = t0 + 120
        while pending:
            arrivals.open_due()
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=0.005)
            if ready:
                end = time.time() - t0
                results += ray.get(ready)
            if time.time() > deadline:
                raise TimeoutError("Approach 1 did not finish in 120 s")
        work = [Work(gates.index(n), s - t0, e - t0) for n, s, e in results]
        return measure("approach1", schedule, tu_s, work, end, arrivals.arrived)


class _Recorder(Hooks):
    """Per batch: the node of its worker and when it was sent and came back."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.worker_pool: ReplicaPool | None = None
        self.nodes: dict[str, str] = {}
        self.batches: list[tuple[str, float, float]] = []
        self.predictions = 0
        self.last_ack = 0.0
        self.first_fetch: float | None = None

    def consumed(self, count: int) -> None:
        if self.first_fetch is None and count:
            self.first_fetch = time.time() - self.t0

    def batch(self, worker: str, size: int, inference_s: float) -> None:
        now = time.time() - self.t0
        if worker not in self.nodes and self.worker_pool is not None:
            self.nodes.update({w.name: w.node_id for w in self.worker_pool.workers() if w.node_id})
        self.batches.append((self.nodes.get(worker, "?"), now - inference_s, now))

    def prediction(self, status: Status, end_to_end_s: float | None) -> None:
        self.predictions += 1
        self.last_ack = time.time() - self.t0


def _pool_settings(
    schedule: Schedule, options: dict[str, str], bootstrap: str, min_workers: int | None
) -> ConsumerSettings:
    """The service of one draw: topics and group of its own, a worker per Spot node."""
    nodes = len(schedule.provision_tu)
    tag = f"s{schedule.max_start_tu:g}-d{schedule.draw}-{os.getpid()}-{time.time_ns()}"
    return ConsumerSettings(
        bootstrap_servers=bootstrap,
        input_topic=f"reuse-in-{tag}",
        output_topic=f"reuse-out-{tag}",
        dlq_topic=f"reuse-dlq-{tag}",
        group_id=f"reuse-{tag}",
        model="synthetic",
        model_option=options,
        worker_resources={SPOT_RESOURCE: 1},
        min_workers=nodes if min_workers is None else min_workers,
        max_workers=nodes,
        autoscale_interval_s=0.2,
        batch_size=1,
        batch_wait_ms=0,
        log_level="warning",
    )


async def _pool_job(
    schedule: Schedule,
    tu_s: float,
    options: dict[str, str],
    bootstrap: str,
    gates: Gates,
    min_workers: int | None,
) -> Measured:
    nodes = len(schedule.provision_tu)
    settings = _pool_settings(schedule, options, bootstrap, min_workers)
    await create_topics(bootstrap, [settings.input_topic])
    molecules = [Molecule(id=f"input-{i}", smiles=SMILES) for i in range(nodes)]
    recorder = _Recorder(time.time())
    arrivals = _Arrivals(gates, schedule.arrival_s(tu_s), lambda: time.time() - recorder.t0)
    processor = StreamProcessor(settings, hooks=recorder)
    recorder.worker_pool = processor.pool

    async def arrive() -> None:
        while not all(arrivals.opened):
            arrivals.open_due()
            await asyncio.sleep(0.005)

    nodes_task: asyncio.Task[None] | None = None
    kafka = ProducerSettings(bootstrap_servers=bootstrap)
    try:
        # The service is up before the job: consumer in its group, workers requested (no node
        # can take them yet). Joining a group takes Tansu about 5 s; it is reported apart.
        async with processor, Publisher(kafka, topic=settings.input_topic) as publisher:
            join_s = await joined(processor)
            recorder.t0 = time.time()
            worker_s_at_t0 = processor.pool.worker_seconds()
            nodes_task = asyncio.create_task(arrive())
            await publisher.publish_all(molecules)
            async with asyncio.timeout(120):
                while recorder.predictions < nodes:
                    await asyncio.sleep(0.005)
            # Worker-seconds from t = 0: what the pool's own accounting bills for the job.
            worker_s = processor.pool.worker_seconds()
    finally:
        if nodes_task is not None:
            nodes_task.cancel()
    work = [Work(gates.index(n), s, e) for n, s, e in recorder.batches]
    measured = measure(
        "molstream", schedule, tu_s, work, recorder.last_ack, arrivals.arrived, recorder.first_fetch
    )
    measured.group_join_s = join_s
    measured.worker_seconds = worker_s - worker_s_at_t0
    return measured


def run_pool(
    schedule: Schedule,
    tu_s: float,
    options: dict[str, str],
    bootstrap: str,
    min_workers: int | None = None,
) -> Measured:
    """Inputs on Kafka; the processor is up at t = 0 (N workers, or ``min_workers`` and the
    autoscaler); nodes arrive on the schedule."""
    nodes = len(schedule.provision_tu)
    with connected_cluster(nodes, wait_for_nodes=False):
        wait_for_spot_nodes(nodes)
        gates = Gates(nodes)
        return asyncio.run(_pool_job(schedule, tu_s, options, bootstrap, gates, min_workers))
