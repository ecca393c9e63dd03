"""Latency with a model that waits: what the pipeline itself adds when the cores are free.

Run: ``.venv/bin/python -m bench.latency_sleep [--workers 4] [--per-molecule-ms 20]
[--latency-s 60] [--loads 0.5,0.8] [--out bench/results]``.

The synthetic model sleeps ``per_molecule_ms`` per molecule (as a GPU model or a remote call
waits): its workers take no core, so the windows measure the pipeline, not the machine. One
embedded broker and one local Ray node with the machine's cores, every worker reserving an
equal share of them. Steps:

1. capacity: a published backlog of ``--capacity-s`` seconds of work, consumed end to end; the
   steady molecules/s is the pool's measured capacity;
2. latency (:mod:`bench.latency`): the same processor keeps running while ``molstream produce
   --rate`` sends each load x capacity for ``--latency-s`` seconds. The floor is the batch
   wait plus the mean batch size at that load x ``per_molecule_ms`` (the model's exact time).

Targets: p99 at most 2x the floor at 50% of capacity, 3x at 80%. Writes
``latency_sleep.json`` and ``latency_sleep.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import latency
from bench.end_to_end import Env, over_backlog
from bench.harness import nci_repeated
from bench.runner import machine_info
from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from consumer.ops.logs import configure_logging

TARGETS = {0.5: 2.0, 0.8: 3.0}
"""Load → the largest p99 / floor accepted."""


async def measure(args: argparse.Namespace, env: Env, workdir: Path) -> dict[str, Any]:
    """Capacity, then every latency window on the same running processor."""
    capacity_per_s = args.workers * 1000 / args.per_molecule_ms
    backlog = nci_repeated(round(capacity_per_s * args.capacity_s), "backlog-")
    topic = "sleep"
    run = over_backlog(
        env,
        topic,
        backlog,
        workers=args.workers,
        model="synthetic",
        options={"per_molecule_ms": f"{args.per_molecule_ms:g}"},
        batch_size=args.batch_size,
        worker_resources={},
        worker_num_cpus=(os.cpu_count() or 2) / args.workers,
    )
    async with run as (capacity, timing, processor):
        setup = latency.Setup(
            bootstrap=env.bootstrap,
            broker_pid=env.broker.pid,
            input_topic=topic,
            output_topic=processor.settings.output_topic,
            timing=timing,
            capacity_per_s=capacity.steady_molecules_per_s,
            seconds=args.latency_s,
            batch_wait_ms=processor.settings.batch_wait_ms,
            per_molecule_s=args.per_molecule_ms / 1000,
            workdir=workdir,
            model=f"synthetic, sleeping {args.per_molecule_ms:g} ms/molecule, "
            f"{args.workers} workers",
        )
        lat = await latency.run(setup, args.loads)
    for w in lat["windows"]:
        target = TARGETS.get(w["load"])
        w["target_p99_over_floor"] = target
        w["meets_target"] = None if target is None else w["p99_over_floor"] <= target
    return {
        "machine": machine_info(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "ideal_capacity_per_s": capacity_per_s,
        "capacity_run": asdict(capacity),
        "latency": lat,
    }


def main() -> int:
    """Measure, print each window's p99 against its floor, write JSON and PNG."""
    parser = argparse.ArgumentParser(prog="python -m bench.latency_sleep", description=__doc__)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--per-molecule-ms", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--capacity-s", type=float, default=20.0, help="backlog, in seconds")
    parser.add_argument("--latency-s", type=float, default=60.0, help="per load")
    parser.add_argument(
        "--loads", type=lambda s: [float(x) for x in s.split(",")], default=[0.5, 0.8]
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    configure_logging("console", "warning")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedBroker() as broker,
        LocalCluster() as cluster,
    ):
        cluster.add_spot_node(num_cpus=os.cpu_count() or 2)
        result = asyncio.run(measure(args, Env(broker, cluster), Path(tmp)))
    result["wall_s"] = time.monotonic() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency_sleep.json").write_text(json.dumps(result, indent=2) + "\n")
    latency.plot_cdf(result["latency"], args.out / "latency_sleep.png")
    for w in result["latency"]["windows"]:
        print(
            f"load {w['load']:.0%} ({w['rate_per_s']:.0f}/s): p99 {w['latency']['p99_ms']:.0f} ms"
            f", floor {w['floor_ms']:.0f} ms, p99/floor {w['p99_over_floor']:.2f}"
            f" (target {w['target_p99_over_floor']}), saturated {w['machine_saturated']}"
        )
    met = [w["meets_target"] for w in result["latency"]["windows"]]
    return 0 if all(m is not False for m in met) else 1


if __name__ == "__main__":
    sys.exit(main())
