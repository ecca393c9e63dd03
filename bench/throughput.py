"""Throughput: end-to-end molecules/s against the model's raw speed in one plain process.

Run: ``.venv/bin/python -m bench.throughput [--molecules 2000] [--out bench/results]``.
Prints a table and writes ``throughput.json``.

1. raw: ``ReferenceModel.predict`` on the molecules in this process, in batches.
2. end to end, reference model, one one-CPU worker: publish, then consume through Kafka and
   Ray; molecules/s from the first acknowledged prediction to the last (steady state), and
   from the start including worker start-up.
3. end to end, synthetic model with ``per_molecule_ms=0``: the dispatch overhead alone, at the
   batch size and at 4x it, with the consumer process's CPU use (what bounds it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.harness import consumer_settings, machine_info, nci
from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from consumer.hooks import Hooks
from consumer.models.reference import ReferenceModel
from consumer.processor import StreamProcessor
from producer.publisher import Publisher
from schemas import Molecule, Status
from schemas.kafka import ProducerSettings


@dataclass(frozen=True)
class Run:
    """One end-to-end run."""

    model: str
    molecules: int
    batch_size: int
    total_s: float
    steady_s: float
    steady_molecules_per_s: float
    total_molecules_per_s: float
    driver_cpu_share: float
    """CPU seconds of this (consumer) process per wall second in the steady window: 1.0 is
    one core saturated, the bound when the model costs nothing."""


class _Clock(Hooks):
    def __init__(self) -> None:
        self.count = 0
        self.first: float | None = None
        self.first_count = 0
        self.last = 0.0
        self.first_cpu = 0.0
        self.last_cpu = 0.0

    def prediction(self, status: Status, end_to_end_s: float | None) -> None:
        now = time.perf_counter()
        self.count += 1
        if self.first is None:
            self.first = now
            self.first_cpu = time.process_time()
        if now == self.first:
            self.first_count = self.count
        self.last = now
        self.last_cpu = time.process_time()


def raw_rate(molecules: list[Molecule], batch_size: int) -> float:
    """Molecules/s of the reference model in this process (model load excluded)."""
    model = ReferenceModel()
    smiles = [m.smiles for m in molecules]
    started = time.perf_counter()
    for i in range(0, len(smiles), batch_size):
        model.predict(smiles[i : i + batch_size])
    return len(smiles) / (time.perf_counter() - started)


async def end_to_end(
    molecules: list[Molecule], *, model: str, options: dict[str, str], batch_size: int
) -> Run:
    """Publish everything, then consume it with one one-CPU worker; time the predictions."""
    with EmbeddedBroker() as broker, LocalCluster() as cluster:
        cluster.add_spot_node()
        kafka = ProducerSettings(bootstrap_servers=broker.bootstrap_servers)
        async with Publisher(kafka, topic="molecules") as pub:
            await pub.publish_all(molecules)
        settings = consumer_settings(
            broker.bootstrap_servers,
            cluster.address,
            min_workers=1,
            max_workers=1,
            model=model,
            model_option=options,
            batch_size=batch_size,
            group_id="bench",
            commit_interval_s=1.0,
            autoscale_interval_s=1.0,
        )
        clock = _Clock()
        started = time.perf_counter()
        async with StreamProcessor(settings, hooks=clock):
            while clock.count < len(molecules):
                await asyncio.sleep(0.05)
        assert clock.first is not None
        steady_n = len(molecules) - clock.first_count
        steady_s = clock.last - clock.first
        return Run(
            model=model,
            molecules=len(molecules),
            batch_size=batch_size,
            total_s=clock.last - started,
            steady_s=steady_s,
            steady_molecules_per_s=steady_n / steady_s,
            total_molecules_per_s=len(molecules) / (clock.last - started),
            driver_cpu_share=(clock.last_cpu - clock.first_cpu) / steady_s,
        )


def main() -> None:
    """Run the three measurements, print them and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--synthetic-molecules", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()

    molecules = nci(args.molecules)
    raw = raw_rate(molecules, args.batch_size)
    ref = asyncio.run(
        end_to_end(molecules, model="reference", options={}, batch_size=args.batch_size)
    )
    synthetic_mols = [
        Molecule(id=f"s{i}", smiles=molecules[i % len(molecules)].smiles)
        for i in range(args.synthetic_molecules)
    ]
    syn, syn_large = (
        asyncio.run(
            end_to_end(
                synthetic_mols, model="synthetic", options={"per_molecule_ms": "0"}, batch_size=b
            )
        )
        for b in (args.batch_size, args.batch_size * 4)
    )
    result = {
        "machine": machine_info(),
        "raw_molecules_per_s": raw,
        "reference_end_to_end": asdict(ref),
        "ratio_end_to_end_over_raw": ref.steady_molecules_per_s / raw,
        "synthetic_zero_cost_end_to_end": asdict(syn),
        "synthetic_zero_cost_end_to_end_4x_batch": asdict(syn_large),
    }
    table = Table("measurement", "molecules/s", title="throughput")
    table.add_row("reference model, raw, one process", f"{raw:.0f}")
    table.add_row("reference, end to end, 1 worker (steady)", f"{ref.steady_molecules_per_s:.0f}")
    table.add_row(
        "reference, end to end, 1 worker (with start)", f"{ref.total_molecules_per_s:.0f}"
    )
    table.add_row("ratio end-to-end steady / raw", f"{result['ratio_end_to_end_over_raw']:.2f}")
    for run in (syn, syn_large):
        table.add_row(
            f"synthetic per_molecule_ms=0, batch {run.batch_size} (steady; "
            f"consumer process CPU {run.driver_cpu_share:.2f} core)",
            f"{run.steady_molecules_per_s:.0f}",
        )
    Console().print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    Console().print(f"wrote {args.out / 'throughput.json'}")


if __name__ == "__main__":
    main()
