"""Worker reuse on a real Ray cluster: the seed's Approach #1 against molstream's pool.

Run: ``.venv/bin/python -m bench.reuse [--inputs 6] [--max-start 0,4,8] [--draws 2]``.
Prints a table and writes ``reuse.json`` and ``reuse.png`` (``--out``, default bench/results).

The job is the simulation's (:mod:`bench.simulation`) played in real time with one time unit
(TU) = ``--tu-s`` seconds (0.5): a synthetic model that loads in 1 TU and predicts one molecule
in 1 TU, N inputs, N one-CPU Spot nodes requested at t = 0. Node i is provisioned at
p_i ~ Uniform(0, S) TU and needs the 3 TU set-up after it, so it joins at p_i + 3 TU.

- Approach 1 (the seed's fairer baseline): N stateless Ray tasks submitted at t = 0,
  ``@ray.remote(num_cpus=1, resources={"spot": 1})``, each loads the model and predicts one
  input; a node runs the next pending task as soon as it is free.
- molstream: a :class:`~consumer.processor.StreamProcessor` with N workers (``min_workers =
  max_workers = N``, ``worker_resources={"spot": 1}``, ``batch_size=1``) is running before
  t = 0, as a service would be: it has joined its consumer group (Tansu takes about 5 s for
  that; reported apart as ``group_join_s``) and its N workers are requested, but no node can
  take them yet. At t = 0 the N inputs are published to Kafka. Each worker loads the model
  once, as its node arrives, and takes inputs for as long as there are any.

How nodes arrive. All N nodes are started before t = 0 and each is held whole by a placement
group (one ``{"CPU": 1, "spot": 1}`` bundle); at the node's arrival time the group is removed
and the node's capacity appears. ``add_node`` itself is no good as the clock: on this machine it
blocks its caller for 1-2.5 s per node (the raylet registering), and Ray refuses to start nodes
from more than one thread at a time, so six nodes due together would arrive over 10 s or more.

What is measured (wall clock, seconds from t = 0, converted to TU for the table):

- time: t = 0 is the first submission (Approach 1: the first ``.remote``; molstream: the
  first input published); the end is the last result (Approach 1: the driver sees the last
  task finish; molstream: the broker acknowledges the last prediction).
- cost, the simulation's billing rule on measured work intervals: a node that ran inputs is
  billed from its provisioning time p_i to the end of its last input (Approach 1: the end of
  the task; molstream: the return of the worker's last batch); a node that ran none is billed
  from p_i to the moment the last input started (0 if it was provisioned later). An input starts
  when its task function starts (Approach 1, model load included) or when its batch is sent to
  a worker (molstream). ``cost from add`` bills from the node's arrival (p_i + 3 TU) instead.

Beside each measurement is :func:`bench.simulation.simulate_run` for the same provisioning
times: improvement = (approach 1 - molstream) / approach 1, for time and for cost. ``sim+start``
runs the simulation once more with the set-up lengthened by the worker start-up measured in
that run (median time from a node's arrival to Approach 1's first task starting there: the Ray
worker process starting, which both approaches pay once per node and the model does not have).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from bench.simulation import parse_max_starts, simulate_run
from consumer.devbroker import EmbeddedBroker
from consumer.hooks import Hooks
from consumer.logs import configure_logging
from consumer.models import load_model
from consumer.pool import WorkerPool
from consumer.processor import StreamProcessor
from consumer.raycluster import SPOT_RESOURCE, LocalCluster
from consumer.settings import ConsumerSettings
from producer.publisher import Publisher
from schemas import Molecule, Status
from schemas.kafka import ProducerSettings

SETUP_TU = 3.0
JSON_NAME = "reuse.json"
PNG_NAME = "reuse.png"
SMILES = "CC(=O)Oc1ccccc1C(=O)O"


@dataclass(frozen=True)
class Schedule:
    """One draw: when each node is provisioned (TU), in node order."""

    max_start_tu: float
    draw: int
    provision_tu: tuple[float, ...]

    def arrival_s(self, tu_s: float) -> list[float]:
        """When each node joins (s after t = 0): provisioning plus set-up."""
        return [(p + SETUP_TU) * tu_s for p in self.provision_tu]


@dataclass(frozen=True)
class Work:
    """One input on one node: seconds after t = 0."""

    node: int
    start_s: float
    end_s: float


@dataclass
class Measured:
    """One approach on one schedule."""

    approach: str
    time_s: float
    time_tu: float
    cost_tu: float
    cost_from_add_tu: float
    first_result_s: float
    inputs_per_node: list[int]
    arrived_s: list[float]
    first_fetch_s: float | None = None
    group_join_s: float | None = None
    worker_seconds: float | None = None
    """molstream only: the pool's own cost accounting (molstream_worker_seconds_total)."""
    work: list[Work] = field(default_factory=list)


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


def bill(billed_from: Sequence[float], work: Sequence[Work]) -> float:
    """Node time of a run, by the simulation's rule (see the module docstring)."""
    last_start = max(w.start_s for w in work)
    cost = 0.0
    for node, begin in enumerate(billed_from):
        ends = [w.end_s for w in work if w.node == node]
        cost += max(ends) - begin if ends else max(0.0, last_start - begin)
    return cost


def measure(
    approach: str,
    schedule: Schedule,
    tu_s: float,
    work: list[Work],
    end_s: float,
    arrived_s: list[float],
    first_fetch_s: float | None = None,
) -> Measured:
    """Time and cost of a run from its work intervals."""
    provisioned_s = [p * tu_s for p in schedule.provision_tu]
    added_s = schedule.arrival_s(tu_s)
    per_node = Counter(w.node for w in work)
    return Measured(
        approach=approach,
        time_s=end_s,
        time_tu=end_s / tu_s,
        cost_tu=bill(provisioned_s, work) / tu_s,
        cost_from_add_tu=bill(added_s, work) / tu_s,
        first_result_s=min(w.end_s for w in work),
        inputs_per_node=[per_node[i] for i in range(len(schedule.provision_tu))],
        arrived_s=arrived_s,
        first_fetch_s=first_fetch_s,
        work=sorted(work, key=lambda w: w.start_s),
    )


# -- the cluster -------------------------------------------------------------------------------


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


def start_cluster(nodes: int) -> LocalCluster:
    """A head plus ``nodes`` one-CPU Spot nodes, and this driver connected to it."""
    import ray

    cluster = LocalCluster()
    cluster.start()
    try:
        for _ in range(nodes):
            cluster.add_spot_node(wait=False)
        ray.init(
            address=cluster.address,
            _node_ip_address="127.0.0.1",
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        deadline = time.monotonic() + 60
        while ray.cluster_resources().get(SPOT_RESOURCE, 0) < nodes:  # type: ignore[no-untyped-call]
            if time.monotonic() > deadline:
                raise RuntimeError("Spot nodes did not register in 60 s")
            time.sleep(0.1)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: LocalCluster) -> None:
    """Leave Ray, then stop every process of the cluster (ours only, by pid)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    cluster.stop()


def _due(arrivals: Sequence[float], opened: Sequence[bool], now: float) -> list[int]:
    return [i for i, at in enumerate(arrivals) if not opened[i] and now >= at]


# -- Approach 1: one stateless task per input ------------------------------------------------


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
    cluster = start_cluster(nodes)
    try:
        gates = Gates(nodes)
        task = ray.remote(num_cpus=1, resources={SPOT_RESOURCE: 1}, max_retries=0)(load_and_predict)
        arrivals = schedule.arrival_s(tu_s)
        arrived = [float("nan")] * nodes
        opened = [False] * nodes
        t0 = time.time()
        pending = [task.remote(options, SMILES) for _ in range(nodes)]
        results: list[tuple[str, float, float]] = []
        end = 0.0
        deadline = t0 + 120
        while pending:
            for i in _due(arrivals, opened, time.time() - t0):
                gates.open(i)
                opened[i] = True
                arrived[i] = time.time() - t0
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=0.005)
            if ready:
                end = time.time() - t0
                results += ray.get(ready)
            if time.time() > deadline:
                raise TimeoutError("Approach 1 did not finish in 120 s")
        work = [Work(gates.index(n), s - t0, e - t0) for n, s, e in results]
        return measure("approach1", schedule, tu_s, work, end, arrived)
    finally:
        stop_cluster(cluster)


# -- molstream's pool ------------------------------------------------------------------------


class _Recorder(Hooks):
    """Per batch: the node of its worker and when it was sent and came back."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.worker_pool: WorkerPool | None = None
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


async def _create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await asyncio.wait_for(admin.start(), 30)
    try:
        await asyncio.wait_for(admin.create_topics([NewTopic(topic, 4, 1)]), 30)
    finally:
        await admin.close()


async def _pool_job(
    schedule: Schedule,
    tu_s: float,
    options: dict[str, str],
    bootstrap: str,
    gates: Gates,
    min_workers: int | None,
) -> Measured:
    nodes = len(schedule.provision_tu)
    tag = f"s{schedule.max_start_tu:g}-d{schedule.draw}-{os.getpid()}-{time.time_ns()}"
    settings = ConsumerSettings(
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
    await _create_topic(bootstrap, settings.input_topic)
    molecules = [Molecule(id=f"input-{i}", smiles=SMILES) for i in range(nodes)]
    arrivals = schedule.arrival_s(tu_s)
    arrived = [float("nan")] * nodes
    opened = [False] * nodes
    recorder = _Recorder(time.time())
    processor = StreamProcessor(settings, hooks=recorder)
    recorder.worker_pool = processor.pool

    async def arrive() -> None:
        while not all(opened):
            for i in _due(arrivals, opened, time.time() - recorder.t0):
                gates.open(i)
                opened[i] = True
                arrived[i] = time.time() - recorder.t0
            await asyncio.sleep(0.005)

    nodes_task: asyncio.Task[None] | None = None
    kafka = ProducerSettings(bootstrap_servers=bootstrap)
    try:
        # The service is up before the job: consumer in its group, workers requested (no node
        # can take them yet). Joining a group takes Tansu about 5 s; it is reported apart.
        join_started = time.time()
        async with processor, Publisher(kafka, topic=settings.input_topic) as publisher:
            async with asyncio.timeout(60):
                while not processor.consumer.assignment():
                    await asyncio.sleep(0.01)
            join_s = time.time() - join_started
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
        "molstream", schedule, tu_s, work, recorder.last_ack, arrived, recorder.first_fetch
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
    cluster = start_cluster(len(schedule.provision_tu))
    try:
        gates = Gates(len(schedule.provision_tu))
        return asyncio.run(_pool_job(schedule, tu_s, options, bootstrap, gates, min_workers))
    finally:
        stop_cluster(cluster)


# -- the comparison --------------------------------------------------------------------------


@dataclass
class Comparison:
    """Both approaches on one schedule, beside the simulation of the same schedule."""

    schedule: Schedule
    approach1: Measured
    molstream: Measured
    tu_s: float

    def improvement(self, attr: str) -> float:
        """(approach 1 - molstream) / approach 1 of a measured attribute."""
        a: float = getattr(self.approach1, attr)
        b: float = getattr(self.molstream, attr)
        return (a - b) / a

    def worker_start_tu(self) -> float:
        """Median time (TU) from a node's arrival to Approach 1's first task starting on it:
        the worker process start-up, which the simulation does not have."""
        first: dict[int, float] = {}
        for w in self.approach1.work:
            first.setdefault(w.node, w.start_s)
        waits = sorted(first[n] - self.approach1.arrived_s[n] for n in first)
        mid = len(waits) // 2
        median = waits[mid] if len(waits) % 2 else (waits[mid - 1] + waits[mid]) / 2
        return median / self.tu_s

    def simulated(self, extra_setup_tu: float = 0.0) -> dict[str, float]:
        """The simulation of the same provisioning times (TU), set-up longer by
        ``extra_setup_tu`` if given."""
        setup = SETUP_TU + extra_setup_tu
        reuse = simulate_run(self.schedule.provision_tu, reuse=True, setup_tu=setup)
        no_reuse = simulate_run(self.schedule.provision_tu, reuse=False, setup_tu=setup)
        return {
            "setup_tu": setup,
            "time_reuse": reuse.time,
            "time_no_reuse": no_reuse.time,
            "cost_reuse": reuse.cost,
            "cost_no_reuse": no_reuse.cost,
            "time_improvement": (no_reuse.time - reuse.time) / no_reuse.time,
            "cost_improvement": (no_reuse.cost - reuse.cost) / no_reuse.cost,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "max_start_tu": self.schedule.max_start_tu,
            "draw": self.schedule.draw,
            "provision_tu": list(self.schedule.provision_tu),
            "approach1": asdict(self.approach1),
            "molstream": asdict(self.molstream),
            "measured": {
                "time_improvement": self.improvement("time_s"),
                "cost_improvement": self.improvement("cost_tu"),
                "cost_from_add_improvement": self.improvement("cost_from_add_tu"),
            },
            "simulated": self.simulated(),
            "worker_start_tu": self.worker_start_tu(),
            "simulated_with_worker_start": self.simulated(self.worker_start_tu()),
        }


def plot(comparisons: Sequence[Comparison], path: Path) -> None:
    """Measured against simulated improvement, time and cost, one group of bars per draw."""
    fig = Figure(figsize=(7.2, 3.0), dpi=160, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    labels = [f"S={c.schedule.max_start_tu:g}\n#{c.schedule.draw}" for c in comparisons]
    xs = np.arange(len(comparisons))
    for ax, attr, key, title in (
        (axes[0], "time_s", "time_improvement", "time"),
        (axes[1], "cost_tu", "cost_improvement", "cost (node-time)"),
    ):
        measured = [100 * c.improvement(attr) for c in comparisons]
        simulated = [100 * c.simulated()[key] for c in comparisons]
        started = [100 * c.simulated(c.worker_start_tu())[key] for c in comparisons]
        ax.bar(xs - 0.27, measured, width=0.27, label="measured", color="#3b528b")
        ax.bar(xs, simulated, width=0.27, label="simulated", color="#5ec962")
        ax.bar(xs + 0.27, started, width=0.27, label="sim. + worker start", color="#b5de2b")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(xs, labels=labels, fontsize=7)
        ax.set_title(f"{title} improvement of the pool", fontsize=9)
        ax.grid(True, axis="y", linewidth=0.4, alpha=0.5)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("(approach 1 - pool) / approach 1 (%)", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.savefig(path)


def summarize(comparisons: Sequence[Comparison]) -> list[dict[str, float]]:
    """Per max start: mean improvements over its draws, measured and simulated."""
    rows = []
    for s in sorted({c.schedule.max_start_tu for c in comparisons}):
        group = [c for c in comparisons if c.schedule.max_start_tu == s]
        sims = [c.simulated() for c in group]
        starts = [c.simulated(c.worker_start_tu()) for c in group]
        rows.append(
            {
                "max_start_tu": s,
                "draws": len(group),
                "time_improvement": _mean([c.improvement("time_s") for c in group]),
                "time_improvement_simulated": _mean([x["time_improvement"] for x in sims]),
                "cost_improvement": _mean([c.improvement("cost_tu") for c in group]),
                "cost_improvement_simulated": _mean([x["cost_improvement"] for x in sims]),
                "time_improvement_simulated_with_worker_start": _mean(
                    [x["time_improvement"] for x in starts]
                ),
                "cost_improvement_simulated_with_worker_start": _mean(
                    [x["cost_improvement"] for x in starts]
                ),
                "cost_from_add_improvement": _mean(
                    [c.improvement("cost_from_add_tu") for c in group]
                ),
            }
        )
    return rows


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _table(comparisons: Sequence[Comparison], tu_s: float) -> Table:
    table = Table(title=f"Approach 1 (task per input) vs molstream pool; 1 TU = {tu_s:g} s")
    for header in (
        "S",
        "p_i (TU)",
        "time A1",
        "time pool",
        "time impr.",
        "sim",
        "sim+start",
        "cost A1",
        "cost pool",
        "cost impr.",
        "sim",
        "sim+start",
        "from add",
        "inputs/node A1 | pool",
    ):
        table.add_column(header, justify="right")
    for c in comparisons:
        sim = c.simulated()
        start = c.simulated(c.worker_start_tu())
        table.add_row(
            f"{c.schedule.max_start_tu:g}",
            " ".join(f"{p:.1f}" for p in sorted(c.schedule.provision_tu)),
            f"{c.approach1.time_tu:.1f}",
            f"{c.molstream.time_tu:.1f}",
            f"{100 * c.improvement('time_s'):.0f}%",
            f"{100 * sim['time_improvement']:.0f}%",
            f"{100 * start['time_improvement']:.0f}%",
            f"{c.approach1.cost_tu:.1f}",
            f"{c.molstream.cost_tu:.1f}",
            f"{100 * c.improvement('cost_tu'):.0f}%",
            f"{100 * sim['cost_improvement']:.0f}%",
            f"{100 * start['cost_improvement']:.0f}%",
            f"{100 * c.improvement('cost_from_add_tu'):.0f}%",
            f"{''.join(map(str, c.approach1.inputs_per_node))} | "
            f"{''.join(map(str, c.molstream.inputs_per_node))}",
        )
    summary = summarize(comparisons)
    if len(summary) < len(comparisons):
        table.add_section()
        for row in summary:
            table.add_row(
                f"{row['max_start_tu']:g}",
                f"mean of {row['draws']:g}",
                "",
                "",
                f"{100 * row['time_improvement']:.0f}%",
                f"{100 * row['time_improvement_simulated']:.0f}%",
                f"{100 * row['time_improvement_simulated_with_worker_start']:.0f}%",
                "",
                "",
                f"{100 * row['cost_improvement']:.0f}%",
                f"{100 * row['cost_improvement_simulated']:.0f}%",
                f"{100 * row['cost_improvement_simulated_with_worker_start']:.0f}%",
                f"{100 * row['cost_from_add_improvement']:.0f}%",
                "",
                style="bold",
            )
    return table


def main() -> None:
    """Run every schedule with both approaches, print the table, write JSON and PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=6, help="inputs N = nodes requested")
    parser.add_argument("--max-start", default="0,4,8", help="max provisioning times S (TU)")
    parser.add_argument("--draws", type=int, default=2, help="provisioning draws per S")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tu-s", type=float, default=0.5, help="seconds per time unit")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    if not 1 <= args.inputs <= 8:
        parser.error("--inputs must be 1..8 (one local Ray node per input)")
    configure_logging("console", "warning")
    console = Console()
    options = {"load_s": f"{args.tu_s:g}", "per_molecule_ms": f"{1000 * args.tu_s:g}"}
    schedules = draw_schedules(args.inputs, parse_max_starts(args.max_start), args.draws, args.seed)
    started = time.monotonic()
    comparisons = []
    with EmbeddedBroker() as broker:
        for k, schedule in enumerate(schedules):
            console.print(
                f"S = {schedule.max_start_tu:g} TU, draw {schedule.draw}: p = "
                + ", ".join(f"{p:.2f}" for p in schedule.provision_tu)
            )
            # Alternate the order so that neither approach always runs on a warmer machine.
            runs: dict[str, Measured] = {}
            order = ("approach1", "molstream") if k % 2 == 0 else ("molstream", "approach1")
            for name in order:
                if name == "approach1":
                    runs[name] = run_approach1(schedule, args.tu_s, options)
                else:
                    runs[name] = run_pool(schedule, args.tu_s, options, broker.bootstrap_servers)
                console.print(f"  {name}: {runs[name].time_s:.2f} s")
            comparisons.append(
                Comparison(schedule, runs["approach1"], runs["molstream"], args.tu_s)
            )
    elapsed = time.monotonic() - started
    Console(width=max(console.width, 200)).print(_table(comparisons, args.tu_s))
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "config": {
            "inputs": args.inputs,
            "nodes": args.inputs,
            "tu_s": args.tu_s,
            "setup_tu": SETUP_TU,
            "model_options": options,
            "batch_size": 1,
            "seed": args.seed,
            "draws": args.draws,
            "node_arrival": "pre-started nodes, each held by a placement group until p_i + 3 TU",
        },
        "elapsed_s": elapsed,
        "summary": summarize(comparisons),
        "runs": [c.to_dict() for c in comparisons],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / JSON_NAME).write_text(json.dumps(result, indent=2) + "\n")
    plot(comparisons, args.out / PNG_NAME)
    console.print(f"wrote {args.out / JSON_NAME} and {args.out / PNG_NAME} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
