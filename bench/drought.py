"""A Spot capacity drought at full length, with the default group timing.

Run: ``.venv/bin/python -m bench.drought [--drought-s 330] [--molecules 6000]``. Prints a
summary, writes ``drought.json`` and ``drought.png`` (``--out``, default bench/results).

The scenario of issue 9 as a user met it: a backlog larger than ``--max-in-flight``, no Spot
node for longer than aiokafka's ``max_poll_interval_ms`` (300 s by default, the setting
``--max-poll-interval-s``), then two nodes. The consumer runs with its defaults; the bench
samples, every second, how long ago it last polled Kafka, and counts predictions, duplicates
and rebalances. The test suite runs the same scenario with a 20 s poll interval.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from bench.harness import OutputWatcher, consumer_settings, publish, synthetic_molecules
from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from consumer.logs import configure_logging
from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings


async def _run(
    args: argparse.Namespace, broker: EmbeddedBroker, cluster: LocalCluster
) -> dict[str, Any]:
    inputs = synthetic_molecules(args.molecules)
    await publish(broker.bootstrap_servers, "molecules", inputs)
    # The consumer's own defaults (group timing, window, batches), not the tests' fast ones.
    settings = consumer_settings(
        broker.bootstrap_servers,
        cluster.address,
        max_workers=2,
        batch_size=ConsumerSettings.model_fields["batch_size"].default,
        commit_interval_s=ConsumerSettings.model_fields["commit_interval_s"].default,
        autoscale_interval_s=ConsumerSettings.model_fields["autoscale_interval_s"].default,
    )
    samples: list[dict[str, float]] = []
    started = time.monotonic()
    async with OutputWatcher(broker.bootstrap_servers) as out, StreamProcessor(settings) as proc:
        nodes_at = None
        while len(out.ids) < len(inputs):
            now = time.monotonic() - started
            if nodes_at is None and now >= args.drought_s:
                nodes_at = now
                # Starting a node blocks for seconds: not on the loop the consumer runs on.
                for _ in range(2):
                    await asyncio.to_thread(cluster.add_spot_node, wait=False)
            health = proc.health()
            samples.append(
                {"t_s": now, "polled_s_ago": health.polled_s_ago, "predicted": len(out.ids)}
            )
            if now > args.drought_s + args.timeout_s:
                break
            await asyncio.sleep(1.0)
    return {
        "molecules": len(inputs),
        "drought_s": args.drought_s,
        "max_poll_interval_s": settings.max_poll_interval_s,
        "max_in_flight": settings.max_in_flight,
        "predicted": len(out.ids),
        "duplicates": out.duplicates(),
        "revokes": proc.revokes,
        "max_polled_s_ago": max(s["polled_s_ago"] for s in samples),
        "done_s": samples[-1]["t_s"],
        "samples": samples,
    }


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t_s"] for s in result["samples"]]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 5))
    top.plot(t, [s["predicted"] for s in result["samples"]])
    top.set_ylabel("molecules predicted")
    top.axvline(result["drought_s"], color="grey", linestyle="--", label="two Spot nodes arrive")
    top.legend(loc="upper left")
    bottom.plot(t, [s["polled_s_ago"] for s in result["samples"]], label="time since last poll")
    bottom.axhline(result["max_poll_interval_s"], color="red", label="max_poll_interval")
    bottom.set_yscale("log")
    bottom.set_ylabel("seconds")
    bottom.set_xlabel("seconds since start")
    bottom.legend(loc="center left")
    fig.suptitle(
        f"Spot drought of {result['drought_s']:g} s: {result['duplicates']} duplicates, "
        f"{result['revokes']} rebalances"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    """Run the drought once; print, write JSON and PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drought-s", type=float, default=330.0)
    parser.add_argument("--molecules", type=int, default=6000)
    parser.add_argument("--timeout-s", type=float, default=300.0, help="after the drought")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    configure_logging("console", os.environ.get("BENCH_LOG_LEVEL", "warning"))
    with EmbeddedBroker() as broker, LocalCluster() as cluster:
        result = asyncio.run(_run(args, broker, cluster))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "drought.json").write_text(json.dumps(result, indent=2))
    _plot(result, args.out / "drought.png")
    print(
        f"drought {result['drought_s']:g} s (max poll interval {result['max_poll_interval_s']:g}"
        f" s): {result['predicted']}/{result['molecules']} predicted, "
        f"{result['duplicates']} duplicates, {result['revokes']} rebalances, longest time "
        f"between polls {result['max_polled_s_ago']:.2f} s, done after {result['done_s']:.0f} s"
    )


if __name__ == "__main__":
    main()
