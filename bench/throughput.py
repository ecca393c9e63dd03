"""Throughput: Kafka alone, the pipeline at zero model cost, the reference model end to end
against its raw speed, and latency under live load, in one run.

Run: ``.venv/bin/python -m bench.throughput`` (sizes: ``--help``). Prints tables, writes
``throughput.json``, ``throughput.png`` (the rates) and ``throughput_latency.png`` (latency
CDFs) to ``--out`` (default bench/results).

One embedded broker and one local Ray cluster of two one-CPU Spot nodes serve every step;
each step has its own topics (4 partitions) and consumer group.

1. Kafka alone (aiokafka, no molstream): ``--zero-cost-molecules`` NCI molecules encoded
   with ``MOLECULE_CODEC`` (encoding timed too) and sent one ``AIOKafkaProducer.send`` each
   with molstream's producer settings (acks=all, zstd, linger 5 ms), every ack awaited:
   records/s from the first send to the last ack. Then read back with ``getmany``, each value
   decoded: records/s.
2. Zero-cost pipeline: the same records through a ``StreamProcessor`` with the synthetic
   model at ``per_molecule_ms=0``, two workers, batches of ``--zero-cost-batch-size``,
   ``--zero-cost-max-in-flight``: molecules/s from the first acknowledged prediction to the
   last, and this (the consumer's) process's CPU per molecule over that window. Its ratio to
   step 1's produce rate.
3. The reference model: raw ``ReferenceModel.predict`` in this process, in batches; end to end
   (backlog published first) with one worker and with two, steady and counting start-up.
4. Latency (``bench.latency``): the two-worker processor of step 3 keeps running while
   ``molstream produce --rate`` sends at each of ``--loads`` x its steady rate for
   ``--latency-s`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import latency, runner
from bench.harness import Timing, create_topics, nci_repeated
from bench.kafka_alone import kafka_alone
from bench.monitor import LoadMonitor, process_monitor
from bench.throughput_report import acceptance, plot_rates, print_tables
from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from consumer.models.reference import ReferenceModel
from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings
from schemas import Molecule
from tests.harness import consumer_settings, nci, publish, wait_until

ZERO_COST = {"per_molecule_ms": "0"}


@dataclass(frozen=True)
class Run:
    """One end-to-end run over a backlog."""

    model: str
    workers: int
    molecules: int
    batch_size: int
    max_in_flight: int
    total_s: float
    steady_s: float
    steady_molecules_per_s: float
    total_molecules_per_s: float
    driver_cpu_share: float
    """CPU seconds of this (consumer) process per wall second in the steady window: 1.0 is
    one core saturated, the bound when the model costs nothing."""
    cpu_us_per_molecule: float
    """CPU of this (consumer) process per molecule in the steady window."""
    machine_load: dict[str, Any]
    """:meth:`LoadMonitor.summary` from the processor's start to the last prediction."""


@dataclass(frozen=True)
class Env:
    """The broker and the Ray cluster every step runs on."""

    broker: EmbeddedBroker
    cluster: LocalCluster

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap_servers

    def watch(self) -> LoadMonitor:
        """A load monitor of this process (the consumer), the broker, the Ray processes."""
        return process_monitor({"consumer": os.getpid(), "broker": self.broker.pid})


def raw_rate(molecules: list[Molecule], batch_size: int) -> float:
    """Molecules/s of the reference model in this process (model load excluded)."""
    model = ReferenceModel()
    smiles = [m.smiles for m in molecules]
    started = time.perf_counter()
    for i in range(0, len(smiles), batch_size):
        model.predict(smiles[i : i + batch_size])
    return len(smiles) / (time.perf_counter() - started)


def _step_settings(
    env: Env,
    topic: str,
    workers: int,
    model: str,
    options: dict[str, str],
    batch_size: int,
    max_in_flight: int,
    **overrides: Any,
) -> ConsumerSettings:
    """A step's consumer: its own topics and group, a fixed pool of ``workers`` (other
    settings in ``overrides``)."""
    return consumer_settings(
        env.bootstrap,
        env.cluster.address,
        input_topic=topic,
        output_topic=f"{topic}.predictions",
        dlq_topic=f"{topic}.dlq",
        group_id=topic,
        min_workers=workers,
        max_workers=workers,
        commit_interval_s=1.0,
        model=model,
        model_option=options,
        autoscale_interval_s=1.0,
        batch_size=batch_size,
        max_in_flight=max_in_flight,
        **overrides,
    )


@contextlib.asynccontextmanager
async def end_to_end(
    env: Env,
    topic: str,
    count: int,
    *,
    workers: int,
    model: str,
    options: dict[str, str],
    batch_size: int,
    max_in_flight: int = 2048,
    **overrides: Any,
) -> AsyncIterator[tuple[Run, Timing, StreamProcessor]]:
    """Consume the ``count`` records already on ``topic`` with ``workers`` one-CPU workers
    (other settings in ``overrides``); yields the run's figures while the processor still
    runs (its hook, for what follows)."""
    await create_topics(env.bootstrap, [f"{topic}.predictions"])
    settings = _step_settings(
        env, topic, workers, model, options, batch_size, max_in_flight, **overrides
    )
    timing = Timing()
    started = time.perf_counter()
    async with StreamProcessor(settings, hooks=timing) as processor:
        with env.watch() as monitor:
            await wait_until(lambda: timing.count >= count, 600, f"{count} predictions on {topic}")
        steady_n, steady_s, steady_cpu_s = timing.steady
        run = Run(
            model=model,
            workers=workers,
            molecules=count,
            batch_size=batch_size,
            max_in_flight=max_in_flight,
            total_s=timing.last - started,
            steady_s=steady_s,
            steady_molecules_per_s=steady_n / steady_s,
            total_molecules_per_s=count / (timing.last - started),
            driver_cpu_share=steady_cpu_s / steady_s,
            cpu_us_per_molecule=steady_cpu_s / steady_n * 1e6,
            machine_load=monitor.summary(),
        )
        yield run, timing, processor


async def measure(args: argparse.Namespace, env: Env, workdir: Path) -> dict[str, Any]:
    """Every step in turn; the result file's content."""
    zero_mols = nci_repeated(args.zero_cost_molecules)
    kafka = await kafka_alone(env, "zero-cost", zero_mols)
    async with end_to_end(
        env,
        "zero-cost",
        len(zero_mols),
        workers=2,
        model="synthetic",
        options=ZERO_COST,
        batch_size=args.zero_cost_batch_size,
        max_in_flight=args.zero_cost_max_in_flight,
    ) as (zero, _, _):
        pass

    molecules = nci(args.molecules)
    lat: dict[str, Any] | None = None
    with env.watch() as raw_monitor:
        raws = [raw_rate(molecules, args.batch_size)]
    raw = raws[0]
    runs: dict[int, Run] = {}
    for workers in (1, 2):
        if workers == 2:
            # Again after the one-worker run: this machine's speed drifts by a third between
            # minutes, and the ratio must not compare two different machines.
            raws.append(raw_rate(molecules, args.batch_size))
            raw = statistics.mean(raws)
        topic = f"reference-{workers}"
        await create_topics(env.bootstrap, [topic])
        await publish(env.bootstrap, topic, molecules)
        ref = end_to_end(
            env,
            topic,
            len(molecules),
            workers=workers,
            model="reference",
            options={},
            batch_size=args.batch_size,
        )
        async with ref as (runs[workers], timing, processor):
            if workers == 2 and args.latency_s > 0:
                setup = latency.Setup(
                    bootstrap=env.bootstrap,
                    broker_pid=env.broker.pid,
                    input_topic=topic,
                    output_topic=processor.settings.output_topic,
                    timing=timing,
                    capacity_per_s=runs[2].steady_molecules_per_s,
                    seconds=args.latency_s,
                    batch_wait_ms=processor.settings.batch_wait_ms,
                    per_molecule_s=1 / raw,
                    workdir=workdir,
                )
                lat = await latency.run(setup, args.loads)
    return {
        "sizes": {k: v for k, v in vars(args).items() if k != "out"},
        "kafka_alone": kafka,
        "synthetic_zero_cost_end_to_end": asdict(zero),
        "ratio_zero_cost_over_kafka_produce": zero.steady_molecules_per_s
        / kafka["produce_records_per_s"],
        "raw_molecules_per_s": raw,
        "raw_molecules_per_s_before_and_after": raws,
        "raw_machine_load": raw_monitor.summary(),
        "reference_per_molecule_ms": 1000 / raw,
        "reference_end_to_end": asdict(runs[1]),
        "ratio_end_to_end_over_raw": runs[1].steady_molecules_per_s / raw,
        "reference_end_to_end_2_workers": asdict(runs[2]),
        "ratio_2_workers_over_2x_raw": runs[2].steady_molecules_per_s / (2 * raw),
        "latency": lat,
    }


def main() -> None:
    """Run every step, print the tables, write JSON and PNGs."""
    parser = runner.parser(__doc__)
    parser.add_argument("--zero-cost-molecules", type=int, default=200_000)
    parser.add_argument("--zero-cost-batch-size", type=int, default=256)
    parser.add_argument("--zero-cost-max-in-flight", type=int, default=8192)
    parser.add_argument("--molecules", type=int, default=4000, help="reference model, ≤ 4999")
    parser.add_argument("--batch-size", type=int, default=64, help="reference model")
    parser.add_argument("--latency-s", type=float, default=30.0, help="per load; 0: skip")
    parser.add_argument(
        "--loads", type=lambda s: [float(x) for x in s.split(",")], default=[0.33, 0.5, 0.8]
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="molstream-throughput-"))
    started = time.monotonic()
    with runner.broker_and_cluster(spot_nodes=2) as (broker, cluster):
        result = asyncio.run(measure(args, Env(broker, cluster), workdir))
    result["run_s"] = time.monotonic() - started
    result["acceptance"] = acceptance(result)
    runner.write_json(args.out / "throughput.json", result)
    console = Console(width=None if sys.stdout.isatty() else 150)
    print_tables(result, console)
    for check, met in result["acceptance"].items():
        console.print(f"{'met' if met else 'NOT met'}: {check}")
    plot_rates(result, args.out / "throughput.png")
    if result["latency"] is not None:
        latency.plot_cdf(result["latency"], args.out / "throughput_latency.png")
    console.print(f"wrote {args.out}/throughput.{{json,png}} in {result['run_s']:.0f} s")


if __name__ == "__main__":
    main()
