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
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import latency, runner
from bench.end_to_end import Env, Run, end_to_end, over_backlog, raw_rate
from bench.harness import Timing, nci_repeated
from bench.kafka_alone import kafka_alone
from bench.throughput_report import acceptance, plot_rates, print_tables
from consumer.processor import StreamProcessor
from tests.harness import nci

ZERO_COST = {"per_molecule_ms": "0"}


@dataclass
class Reference:
    """Step 3 and 4's figures: the raw rates, the end-to-end runs, the latency."""

    raws: list[float]
    raw_machine_load: dict[str, Any]
    runs: dict[int, Run] = field(default_factory=dict)
    latency: dict[str, Any] | None = None

    @property
    def raw(self) -> float:
        """The mean raw rate of the measures so far."""
        return statistics.mean(self.raws)


async def zero_cost(args: argparse.Namespace, env: Env) -> tuple[dict[str, Any], Run]:
    """Steps 1 and 2: Kafka alone, then the pipeline at zero model cost."""
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
    return kafka, zero


async def reference(args: argparse.Namespace, env: Env, workdir: Path) -> Reference:
    """Steps 3 and 4: the reference model raw, end to end with one worker and two, and the
    latency under live load while the two-worker run still runs."""
    molecules = nci(args.molecules)
    with env.watch() as raw_monitor:
        raws = [raw_rate(molecules, args.batch_size)]
    ref = Reference(raws, raw_monitor.summary())
    for workers in (1, 2):
        if workers == 2:
            # Again after the one-worker run: this machine's speed drifts by a third between
            # minutes, and the ratio must not compare two different machines.
            ref.raws.append(raw_rate(molecules, args.batch_size))
        run = over_backlog(
            env,
            f"reference-{workers}",
            molecules,
            workers=workers,
            model="reference",
            options={},
            batch_size=args.batch_size,
        )
        async with run as (ref.runs[workers], timing, processor):
            if workers == 2 and args.latency_s > 0:
                ref.latency = await _latency(args, env, ref, timing, processor, workdir)
    return ref


async def _latency(
    args: argparse.Namespace,
    env: Env,
    ref: Reference,
    timing: Timing,
    processor: StreamProcessor,
    workdir: Path,
) -> dict[str, Any]:
    setup = latency.Setup(
        bootstrap=env.bootstrap,
        broker_pid=env.broker.pid,
        input_topic=processor.settings.input_topic,
        output_topic=processor.settings.output_topic,
        timing=timing,
        capacity_per_s=ref.runs[2].steady_molecules_per_s,
        seconds=args.latency_s,
        batch_wait_ms=processor.settings.batch_wait_ms,
        per_molecule_s=1 / ref.raw,
        workdir=workdir,
    )
    return await latency.run(setup, args.loads)


async def measure(args: argparse.Namespace, env: Env, workdir: Path) -> dict[str, Any]:
    """Every step in turn; the result file's content."""
    kafka, zero = await zero_cost(args, env)
    ref = await reference(args, env, workdir)
    raw, runs = ref.raw, ref.runs
    return {
        "sizes": {k: v for k, v in vars(args).items() if k != "out"},
        "kafka_alone": kafka,
        "synthetic_zero_cost_end_to_end": asdict(zero),
        "ratio_zero_cost_over_kafka_produce": zero.steady_molecules_per_s
        / kafka["produce_records_per_s"],
        "raw_molecules_per_s": raw,
        "raw_molecules_per_s_before_and_after": ref.raws,
        "raw_machine_load": ref.raw_machine_load,
        "reference_per_molecule_ms": 1000 / raw,
        "reference_end_to_end": asdict(runs[1]),
        "ratio_end_to_end_over_raw": runs[1].steady_molecules_per_s / raw,
        "reference_end_to_end_2_workers": asdict(runs[2]),
        "ratio_2_workers_over_2x_raw": runs[2].steady_molecules_per_s / (2 * raw),
        "latency": ref.latency,
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
