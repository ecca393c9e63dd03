"""The consumer's CPU per batch against Ray's own per call, measured in one run.

Run: ``.venv/bin/python -m bench.per_batch [--point 16@5] [--steady-s 20] [--out bench/results]``.
One embedded broker and one local Ray cluster (a head and one node with the machine's cores);
this process is the Ray driver of everything measured:

1. the floor (:mod:`bench.floor`): a bare asyncio driver, no molstream code, awaiting calls
   to as many actors as the point has workers, at the point's ideal batch rate, each call as
   long as a batch's model time;
2. the consumer: the point of ``bench.pool_scale`` (by default 16 workers, synthetic model
   at 5 ms per molecule, batches of 16: 200 batches/s), its CPU per batch in the steady window;
3. the floor again, at the batch rate the consumer reached (a drift of the machine's speed
   shows against the first).

``cpu_over_floor`` is the consumer's CPU per batch over the floor's CPU per call at the same
rate (step 3), both this process's CPU over a window divided by the batches or calls in it;
``marginal_over_floor`` takes each side's idle CPU off first; ``cpu_over_floor_before`` is
against step 1. Target: ``cpu_over_floor`` at most 1.2.

With ``--profile FILE``, a second fresh broker and cluster run the consumer and the floor at
its rate once more, each profiled by py-spy (``FILE`` and ``FILE.floor.raw``): ``profiled``
in the JSON sets their CPU by part side by side. py-spy takes CPU of its own, so the
comparison above is measured without it. Writes ``per_batch.json`` and ``per_batch.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.floor import Floor, FloorOptions, measure_floor
from bench.pool_scale.points import Options, Point, parse_points, worker_cpus
from bench.pool_scale.run import measure_on
from bench.profile_summary import FLOOR_PARTS, summarise
from bench.profiling import RATE_PER_S, beside
from bench.runner import machine_info
from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import FAST_HEALTH_CHECKS, LocalCluster
from consumer.ops.logs import configure_logging
from tests.harness import connect_driver

TARGET = 1.2
REST = "rest, outside the Python samples"
REQUEST_BYTES = 1500
"""About a packed request of 16 synthetic molecules (and its answer)."""


def floor_options(point: Point, opts: Options, seconds: float) -> FloorOptions:
    """The floor's traffic for ``point``: its workers, batch rate and model time per batch."""
    compute_ms = point.per_molecule_ms * opts.batch_size
    return FloorOptions(
        actors=point.parallel,
        rate_per_s=point.parallel * 1000 / compute_ms,
        compute_ms=compute_ms,
        payload_bytes=REQUEST_BYTES,
        num_cpus=worker_cpus(point, opts),
        seconds=seconds,
        idle_s=opts.idle_s,
    )


def compare(consumer: dict[str, Any], before: Floor, after: Floor) -> dict[str, Any]:
    """The consumer's CPU per batch as multiples of the floor's per call at the same rate
    (``after``), and of the floor at the point's ideal rate (``before``)."""
    per_batch = consumer["consumer_cpu_ms_per_batch"]
    marginal = consumer["consumer_marginal_ms_per_batch"]
    ratio = per_batch / after.cpu_ms_per_call
    return {
        "floor_cpu_ms_per_call": after.cpu_ms_per_call,
        "floor_marginal_cpu_ms_per_call": after.marginal_cpu_ms_per_call,
        "floor_calls_per_s": after.calls_per_s,
        "consumer_cpu_ms_per_batch": per_batch,
        "consumer_marginal_ms_per_batch": marginal,
        "consumer_batches_per_s": consumer["batches"] / consumer["window_s"],
        "cpu_over_floor": ratio,
        "marginal_over_floor": marginal / after.marginal_cpu_ms_per_call,
        "cpu_over_floor_before": per_batch / before.cpu_ms_per_call,
        "target": TARGET,
        "meets_target": ratio <= TARGET,
    }


def ms_by_part(summary: dict[str, Any], per_s: float, cpu_ms: float) -> dict[str, float]:
    """A profile's busy samples as CPU ms per batch (or call) by part, at ``per_s`` batches a
    second over the profiled window; ``rest, outside the Python samples`` is what is left of
    ``cpu_ms``: Ray's C++ threads and the kernel's work for this process, which py-spy does not
    sample (and any samples it missed)."""
    to_ms = 1000 / RATE_PER_S / (per_s * summary["window_s"])
    parts = {name: n * to_ms for name, n in summary["samples"].items()}
    python = sum(parts.values())
    return {**parts, "Python, all parts": python, REST: cpu_ms - python}


def profiles(consumer: dict[str, Any], floor: Floor, consumer_profile: Path) -> dict[str, Any]:
    """The profiled run's consumer and floor, their profiles summarised and set side by side
    in CPU ms; an ``error`` when py-spy wrote no profile (not installed, or not allowed)."""
    floor_path = beside(consumer_profile, "floor")
    assert floor_path is not None
    if not (consumer_profile.exists() and floor_path.exists()):
        return {"error": f"py-spy wrote no profile to {consumer_profile} or {floor_path}"}
    consumer_summary = summarise(consumer_profile.read_text().splitlines())
    floor_summary = summarise(floor_path.read_text().splitlines(), parts_of=FLOOR_PARTS)
    consumer_summary["window_s"] = consumer["window_s"]
    floor_summary["window_s"] = floor.window_s
    per_batch = consumer["consumer_cpu_ms_per_batch"]
    return {
        "consumer_cpu_ms_per_batch": per_batch,
        "floor": floor.as_dict(),
        "cpu_over_floor": per_batch / floor.cpu_ms_per_call,
        "profile": consumer_summary,
        "floor_profile": floor_summary,
        "consumer_ms_per_batch_by_part": ms_by_part(
            consumer_summary, consumer["batches"] / consumer["window_s"], per_batch
        ),
        "floor_ms_per_call_by_part": ms_by_part(
            floor_summary, floor.calls_per_s, floor.cpu_ms_per_call
        ),
    }


def print_parts(profiled: dict[str, Any]) -> None:
    """The profiled run's CPU ms by part, consumer and floor side by side."""
    consumer = profiled["consumer_ms_per_batch_by_part"]
    floor = profiled["floor_ms_per_call_by_part"]
    print(f"{'CPU ms by part (profiled run)':40} {'consumer/batch':>14} {'floor/call':>10}")
    for name in sorted(consumer.keys() | floor.keys(), key=lambda n: -consumer.get(n, 0.0)):
        print(f"{name:40} {consumer.get(name, 0.0):14.3f} {floor.get(name, 0.0):10.3f}")


async def _compared(point: Point, opts: Options, bootstrap: str, address: str) -> dict[str, Any]:
    """The floor at the ideal rate, the consumer, the floor at the consumer's rate."""
    floor_opts = floor_options(point, opts, opts.steady_s)
    before = await measure_floor(floor_opts)
    consumer = await measure_on(point, opts, bootstrap, address)
    if "error" in consumer:
        return {"floor_before": before.as_dict(), "consumer": consumer}
    # At the rate the consumer reached: its idle CPU weighs on each batch by the rate.
    matched = replace(floor_opts, rate_per_s=consumer["batches"] / consumer["window_s"])
    after = await measure_floor(matched)
    return {
        "floor_options": floor_opts.__dict__,
        "floor_before": before.as_dict(),
        "floor_after_rate_per_s": matched.rate_per_s,
        "floor_after": after.as_dict(),
        "consumer": consumer,
        **compare(consumer, before, after),
    }


async def _profiled(point: Point, opts: Options, bootstrap: str, address: str) -> dict[str, Any]:
    """The consumer, then the floor at its rate, each profiled (py-spy takes CPU of its own:
    the comparison above is measured without it)."""
    assert opts.profile_to is not None
    consumer = await measure_on(point, opts, bootstrap, address)
    if "error" in consumer:
        return {"error": consumer["error"]}
    floor_opts = replace(
        floor_options(point, opts, opts.steady_s),
        rate_per_s=consumer["batches"] / consumer["window_s"],
        profile_to=beside(opts.profile_to, "floor"),
    )
    floor = await measure_floor(floor_opts)
    return profiles(consumer, floor, opts.profile_to)


Steps = Callable[[Point, Options, str, str], Awaitable[dict[str, Any]]]
"""What runs connected: the point, its options, the broker and the Ray cluster's address."""


def on_fresh_cluster(point: Point, opts: Options, steps: Steps) -> dict[str, Any]:
    """Run ``steps`` on a fresh broker and Ray cluster, this process its Ray driver."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    with (
        EmbeddedBroker() as broker,
        LocalCluster(head_args={"_system_config": dict(FAST_HEALTH_CHECKS)}) as cluster,
    ):
        cluster.add_spot_node(num_cpus=opts.node_cpus)

        async def connected() -> dict[str, Any]:
            import ray

            connect_driver(cluster.address)
            try:
                return await steps(point, opts, broker.bootstrap_servers, cluster.address)
            finally:
                ray.shutdown()

        return asyncio.run(connected())


def measure(point: Point, opts: Options) -> dict[str, Any]:
    """The floor, the consumer and the floor again; with ``opts.profile_to``, then one more
    consumer and floor, profiled, on another fresh broker and cluster."""
    result = on_fresh_cluster(point, replace(opts, profile_to=None), _compared)
    if opts.profile_to is not None and "cpu_over_floor" in result:
        result["profiled"] = on_fresh_cluster(point, opts, _profiled)
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    """Bars: the floor before and after, the consumer, in CPU ms per batch or call."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["floor, ideal rate", "consumer", "floor, same rate"]
    values = [
        result["floor_before"]["cpu_ms_per_call"],
        result["consumer_cpu_ms_per_batch"],
        result["floor_after"]["cpu_ms_per_call"],
    ]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(names, values, color=["grey", "tab:blue", "grey"])
    ax.axhline(result["floor_cpu_ms_per_call"] * TARGET, color="red", ls="--", label="target")
    ax.set_ylabel("CPU ms of the driver process per batch / call")
    ax.set_title(f"{result['point']}: {result['cpu_over_floor']:.2f}x the floor")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    """Measure, print, write JSON and PNG; 1 when the target is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench.per_batch", description=__doc__)
    parser.add_argument("--point", default="16@5", help="W[xK][@MS] as in bench.pool_scale")
    parser.add_argument("--steady-s", type=float, default=20.0)
    parser.add_argument("--idle-s", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--node-cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument(
        "--profile", type=Path, help="one more run, profiled by py-spy, to this file"
    )
    args = parser.parse_args(argv)
    configure_logging("console", "warning")
    (point,) = parse_points(args.point)
    opts = Options(
        args.steady_s, args.idle_s, args.batch_size, args.node_cpus, 0, 300.0, args.profile
    )
    started = time.monotonic()
    result = {"point": point.name, **measure(point, opts)}
    wall_s = time.monotonic() - started
    result |= {"machine": machine_info(), "config": vars(args), "wall_s": wall_s}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "per_batch.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if "cpu_over_floor" not in result:
        print(result["consumer"].get("error"), file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=2))
    if "floor_profile" in result.get("profiled", {}):
        print_parts(result["profiled"])
    plot(result, args.out / "per_batch.png")
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
