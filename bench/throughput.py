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
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.table import Table

from bench import latency
from bench.harness import (
    LoadMonitor,
    Timing,
    consumer_settings,
    create_topics,
    machine_info,
    nci,
    nci_repeated,
    process_monitor,
    publish,
    publish_raw,
    wait_until,
)
from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from consumer.models.reference import ReferenceModel
from consumer.processor import StreamProcessor
from schemas import MOLECULE_CODEC, Molecule
from schemas.kafka import ProducerSettings

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


async def kafka_alone(env: Env, topic: str, molecules: list[Molecule]) -> dict[str, Any]:
    """Records/s of plain aiokafka on this broker: produce (encode, send, every ack awaited)
    and consume (getmany, decode)."""
    await create_topics(env.bootstrap, [topic])
    settings = ProducerSettings(bootstrap_servers=env.bootstrap)
    records: Iterator[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = (
        (m.id.encode(), MOLECULE_CODEC.encode(replace(m, submitted_at=datetime.now(UTC))), [])
        for m in molecules
    )
    with env.watch() as monitor:
        sent = await publish_raw(
            env.bootstrap, topic, records, producer_kwargs=settings.producer_kwargs()
        )
        count, size, consume_s = await _read_back(env, topic, sent.records)
    return {
        "records": sent.records,
        "value_bytes_mean": size / count,
        "producer": {k: settings.producer_kwargs()[k] for k in ("acks", "compression_type")}
        | {"linger_ms": settings.linger_ms},
        "produce_records_per_s": sent.records / sent.seconds,
        "consume_records_per_s": count / consume_s,
        "machine_load": monitor.summary(),
    }


async def _read_back(env: Env, topic: str, records: int) -> tuple[int, int, float]:
    """Read ``records`` records of ``topic`` from the start, decoding each: (records, value
    bytes, seconds)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=env.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    count, size = 0, 0
    try:
        started = time.perf_counter()
        async with asyncio.timeout(300):
            while count < records:
                for part in (await consumer.getmany(timeout_ms=500)).values():
                    for record in part:
                        MOLECULE_CODEC.decode(record.value)
                        count += 1
                        size += len(record.value)
        consume_s = time.perf_counter() - started
    finally:
        await consumer.stop()
    return count, size, consume_s


def raw_rate(molecules: list[Molecule], batch_size: int) -> float:
    """Molecules/s of the reference model in this process (model load excluded)."""
    model = ReferenceModel()
    smiles = [m.smiles for m in molecules]
    started = time.perf_counter()
    for i in range(0, len(smiles), batch_size):
        model.predict(smiles[i : i + batch_size])
    return len(smiles) / (time.perf_counter() - started)


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
    settings = consumer_settings(
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
            env, topic, len(molecules), workers=workers, model="reference", options={},
            batch_size=args.batch_size,
        )  # fmt: skip
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
        "machine": machine_info(),
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


def acceptance(result: dict[str, Any]) -> dict[str, bool]:
    """The targets of issue 12, each met or not in this run."""
    checks = {
        "zero_cost_over_kafka_produce >= 0.5": result["ratio_zero_cost_over_kafka_produce"] >= 0.5,
        "end_to_end_over_raw >= 0.9": result["ratio_end_to_end_over_raw"] >= 0.9,
    }
    for w in (result["latency"] or {}).get("windows", []):
        if w["load"] == 0.5:
            checks["p99 at 50% load <= 2x floor"] = w["p99_over_floor"] <= 2
    return checks


def print_tables(result: dict[str, Any], console: Console) -> None:
    """The rates, then the latency windows."""
    kafka, zero = result["kafka_alone"], result["synthetic_zero_cost_end_to_end"]
    ref1, ref2 = result["reference_end_to_end"], result["reference_end_to_end_2_workers"]
    zero_cost = (
        f"zero-cost pipeline, 2 workers, batch {zero['batch_size']} (steady; consumer "
        f"{zero['cpu_us_per_molecule']:.0f} µs CPU/molecule, {zero['driver_cpu_share']:.2f} core)"
    )
    table = Table("measurement", "per s", "machine cores (other)", title="throughput")

    def add(name: str, value: float, step: dict[str, Any] | None = None) -> None:
        cores = ""
        if step is not None:
            load = step["machine_load"]
            cores = f"{load['machine_cores']['mean']:.2f} ({load['other_cores']['mean']:.2f})"
        table.add_row(name, f"{value:.2f}" if name.startswith("ratio") else f"{value:,.0f}", cores)

    add(
        "Kafka alone: produce (send each, all acked), records",
        kafka["produce_records_per_s"],
        kafka,
    )
    add("Kafka alone: consume (getmany, decode each), records", kafka["consume_records_per_s"])
    add(zero_cost, zero["steady_molecules_per_s"], zero)
    add(
        "ratio zero-cost / Kafka produce (target ≥ 0.5)",
        result["ratio_zero_cost_over_kafka_produce"],
    )
    raw_step = {"machine_load": result["raw_machine_load"]}
    add("reference model, raw, one process", result["raw_molecules_per_s"], raw_step)
    add("reference, end to end, 1 worker (steady)", ref1["steady_molecules_per_s"], ref1)
    add("reference, end to end, 1 worker (with start-up)", ref1["total_molecules_per_s"])
    add("ratio 1 worker steady / raw (target ≥ 0.9)", result["ratio_end_to_end_over_raw"])
    add("reference, end to end, 2 workers (steady): capacity", ref2["steady_molecules_per_s"], ref2)
    add("ratio 2 workers steady / (2 x raw)", result["ratio_2_workers_over_2x_raw"])
    console.print(table)
    if result["latency"] is None:
        return
    table = Table(
        *("load", "rate/s (achieved)", "n", "p50", "p90", "p99", "max", "floor", "p99/floor"),
        *("mean batch", "read-back p50/p99"),
        title="latency (ms): input record timestamp -> prediction acknowledged",
    )
    windows = result["latency"]["windows"]
    for w in windows:
        lat, back = w["latency"], w["readback"]
        table.add_row(
            f"{w['load']:.0%}",
            f"{w['rate_per_s']:.0f} ({back['achieved_rate_per_s']:.0f})",
            str(w["molecules"]),
            *(f"{lat[k]:.0f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
            f"{w['floor_ms']:.0f}",
            f"{w['p99_over_floor']:.2f}",
            f"{w['mean_batch_size']:.1f}",
            f"{back['p50_ms']:.0f}/{back['p99_ms']:.0f}",
        )
    console.print(table)
    groups = ("machine", "consumer", "producer", "broker", "ray", "other")
    table = Table(
        "load", *groups, "all cores busy", "load avg", title="cores used during the windows (mean)"
    )
    for w in windows:
        load = w["machine_load"]
        table.add_row(
            f"{w['load']:.0%}",
            *(f"{load[f'{g}_cores']['mean']:.2f}" for g in groups),
            f"{load['saturated_share']:.0%} of samples"
            + (" SATURATED" if w["machine_saturated"] else ""),
            f"{load['load_avg_1m']['mean']:.1f}",
        )
    console.print(table)


def plot_rates(result: dict[str, Any], path: Path) -> None:
    """The rates as bars, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kafka, zero = result["kafka_alone"], result["synthetic_zero_cost_end_to_end"]
    bars = {
        "Kafka alone: produce": kafka["produce_records_per_s"],
        "Kafka alone: consume": kafka["consume_records_per_s"],
        f"zero-cost pipeline, 2 workers, batch {zero['batch_size']}": zero[
            "steady_molecules_per_s"
        ],
        "reference model raw, 1 process": result["raw_molecules_per_s"],
        "reference end to end, 1 worker": result["reference_end_to_end"]["steady_molecules_per_s"],
        "reference end to end, 2 workers": result["reference_end_to_end_2_workers"][
            "steady_molecules_per_s"
        ],
    }
    names, values = list(bars)[::-1], list(bars.values())[::-1]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.barh(names, values, color=["C0", "C0", "C1", "C2", "C2", "C2"][::-1])
    for i, value in enumerate(values):
        ax.annotate(f"{value:,.0f}", (value, i), xytext=(3, 0), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlim(right=max(values) * 4)  # room for the labels
    ax.set_xlabel("records or molecules per second (steady)")
    ax.set_title(
        f"zero-cost / Kafka produce {result['ratio_zero_cost_over_kafka_produce']:.2f}; "
        f"end to end / raw {result['ratio_end_to_end_over_raw']:.2f}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    """Run every step, print the tables, write JSON and PNGs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zero-cost-molecules", type=int, default=200_000)
    parser.add_argument("--zero-cost-batch-size", type=int, default=256)
    parser.add_argument("--zero-cost-max-in-flight", type=int, default=8192)
    parser.add_argument("--molecules", type=int, default=4000, help="reference model, ≤ 4999")
    parser.add_argument("--batch-size", type=int, default=64, help="reference model")
    parser.add_argument("--latency-s", type=float, default=30.0, help="per load; 0: skip")
    parser.add_argument(
        "--loads", type=lambda s: [float(x) for x in s.split(",")], default=[0.33, 0.5, 0.8]
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    workdir = Path(tempfile.mkdtemp(prefix="molstream-throughput-"))
    started = time.monotonic()
    with EmbeddedBroker() as broker, LocalCluster() as cluster:
        for _ in range(2):
            cluster.add_spot_node()
        result = asyncio.run(measure(args, Env(broker, cluster), workdir))
    result["run_s"] = time.monotonic() - started
    result["acceptance"] = acceptance(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "throughput.json").write_text(json.dumps(result, indent=2) + "\n")
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
