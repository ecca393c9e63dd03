"""Each ratio of ``bench.throughput`` measured in turns, so that the machine's drift cancels.

Run: ``.venv/bin/python -m bench.alternating [--pairs 3] [--out bench/results]``.

This machine's speed drifts by a third between minutes, so a raw rate measured once and a
pipeline rate measured a minute later compare two machines. Here each pair measures the raw
side and then the pipeline right after it, and the result is the median of the pairwise
ratios with their minimum and maximum:

- **end to end / raw model**: the reference model's rate in this process (batches of 64),
  then the same molecules published and consumed end to end with 1 worker (steady window);
- **zero-cost pipeline / raw produce**: the NCI molecules sent with plain aiokafka (one
  ``send`` each, every ack awaited), then the same records consumed by the pipeline with the
  synthetic model at 0 ms, 2 workers, batches of 256 (steady window): ``bench.zero_cost``.

One embedded broker and one local Ray cluster (a head and two one-CPU Spot nodes) serve
every pair; each measurement has its own topics. Writes ``alternating.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench import zero_cost
from bench.end_to_end import Env, over_backlog, raw_rate
from bench.runner import machine_info
from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from consumer.ops.logs import configure_logging
from tests.harness import nci

TARGET = 0.9


async def reference_pair(env: Env, i: int, molecules: int, batch_size: int) -> dict[str, float]:
    """The raw model, then end to end with one worker, on the same molecules."""
    mols = nci(molecules)
    raw = raw_rate(mols, batch_size)
    run = over_backlog(
        env, f"reference-{i}", mols, workers=1, model="reference", options={}, batch_size=batch_size
    )
    async with run as (e2e, _, _):
        pass
    return {
        "raw_molecules_per_s": raw,
        "end_to_end_molecules_per_s": e2e.steady_molecules_per_s,
        "ratio": e2e.steady_molecules_per_s / raw,
    }


async def zero_cost_pair(env: Env, i: int, molecules: int) -> dict[str, float]:
    """Plain aiokafka produce, then the zero-cost pipeline over the records it sent."""
    measured = await zero_cost.measure(env, molecules, topic=f"zero-cost-{i}")
    return {**measured, "ratio": measured["ratio_over_kafka_produce"]}


def summary(pairs: list[dict[str, float]]) -> dict[str, Any]:
    """Median, minimum and maximum of the pairwise ratios, each pair kept."""
    ratios = [p["ratio"] for p in pairs]
    median = statistics.median(ratios)
    return {
        "pairs": pairs,
        "ratio_median": median,
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "ratio_spread": max(ratios) - min(ratios),
        "target": TARGET,
        "meets_target": median >= TARGET,
    }


async def measure(args: argparse.Namespace, env: Env) -> dict[str, Any]:
    """Both comparisons, pair after pair, interleaved."""
    reference, zero = [], []
    for i in range(args.pairs):
        reference.append(await reference_pair(env, i, args.molecules, args.batch_size))
        zero.append(await zero_cost_pair(env, i, args.zero_cost_molecules))
        print(f"pair {i}: reference {reference[-1]}, zero cost {zero[-1]}", flush=True)
    return {"end_to_end_over_raw": summary(reference), "zero_cost_over_produce": summary(zero)}


def plot(result: dict[str, Any], path: Path) -> None:
    """Each pair's ratio for both comparisons, their medians and the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for x, name in enumerate(("end_to_end_over_raw", "zero_cost_over_produce")):
        ratios = [pair["ratio"] for pair in result[name]["pairs"]]
        ax.scatter([x] * len(ratios), ratios, color="grey", label="pairs" if x == 0 else None)
        ax.hlines(result[name]["ratio_median"], x - 0.2, x + 0.2, color="tab:blue")
    ax.axhline(TARGET, color="red", ls="--", label=f"target {TARGET}")
    ax.set_xticks([0, 1], ["end to end / raw model", "zero-cost / raw produce"])
    ax.set_xlim(-0.5, 1.5)
    ax.set_ylabel("ratio (blue: median of the pairs)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main() -> int:
    """Measure, print the medians, write JSON and PNG; 1 when a median misses its target."""
    parser = argparse.ArgumentParser(prog="python -m bench.alternating", description=__doc__)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--molecules", type=int, default=4000, help="reference model")
    parser.add_argument("--batch-size", type=int, default=64, help="reference model")
    parser.add_argument("--zero-cost-molecules", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    configure_logging("console", "warning")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    started = time.monotonic()
    with EmbeddedBroker() as broker, LocalCluster() as cluster:
        for _ in range(2):
            cluster.add_spot_node()
        result = asyncio.run(measure(args, Env(broker, cluster)))
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    result |= {"machine": machine_info(), "config": config, "wall_s": time.monotonic() - started}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "alternating.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out / "alternating.png")
    for name in ("end_to_end_over_raw", "zero_cost_over_produce"):
        s = result[name]
        print(
            f"{name}: median {s['ratio_median']:.3f} (min {s['ratio_min']:.3f}, max "
            f"{s['ratio_max']:.3f}) over {args.pairs} pairs, target {TARGET}"
        )
    met = [result[n]["meets_target"] for n in ("end_to_end_over_raw", "zero_cost_over_produce")]
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
