"""Slots: one pool point of ``bench.pool_scale`` run several times, and where its gap to ideal
goes.

Run: ``.venv/bin/python -m bench.slots [--point 32x4] [--runs 3] [--out bench/results]``.

Each run is a fresh broker and Ray cluster (:func:`bench.pool_scale.run.measure`). The result
is the median of the runs' ratios to ideal, against the target (0.95 for ``32x4``), and per
run the two parts of the gap, which multiply to the ratio:

- ``round_trip_share``: the model's time per batch over the mean round trip (slot taken to
  slot given back): what Ray's call, the thread hand-off in the actor and the consumer's
  dispatch add to each batch;
- ``slot_occupancy``: the share of slots holding a batch (sampled every 0.1 s): batches the
  feed did not hand out in time.

With ``--profile`` one more run (not one of the median's: py-spy takes CPU of its own) has its
steady window profiled: the consumer, and one actor with its threads' idle time (``.actor.raw``
beside), which splits the round trip (:func:`actor_time`).
Writes ``slots.json`` and ``slots.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.pool_scale.points import Options, Point, parse_points
from bench.pool_scale.run import measure
from bench.profiling import RATE_PER_S, beside
from bench.runner import machine_info
from consumer.ops.logs import configure_logging


def gap(run: dict[str, Any]) -> dict[str, float]:
    """A run's ratio to ideal split into the round trip's share and the slots' occupancy."""
    round_trip_share = run["model_ms_per_batch"] / run["round_trip_ms_mean"]
    return {
        "round_trip_overhead_ms": run["round_trip_ms_mean"] - run["model_ms_per_batch"],
        "round_trip_share": round_trip_share,
        "slot_occupancy": run["slot_occupancy"],
        "explained_ratio": round_trip_share * run["slot_occupancy"],
    }


EXECUTOR = "actor_method_executor"
"""The root frame of a thread of the actor while it computes a call (Ray's executor)."""
MODEL = "SyntheticModel.predict"


def actor_time(lines: list[str], run: dict[str, Any]) -> dict[str, float]:
    """One actor's thread time per batch, from a py-spy profile with idle samples (every
    thread's whole time) over ``run``'s window, the batches spread evenly over the workers:
    in the model's frame (its sleep, and the wait for a core and the GIL after it), in the
    rest of the call (decoding, encoding, Ray's executor), and the rest of the round trip,
    outside the actor's Python (Ray's transport both ways, the consumer).

    Raises ``ValueError`` when no sample is in Ray's executor (not an actor's profile)."""
    model = executor = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if EXECUTOR not in stack or not count.isdigit():
            continue
        executor += int(count)
        model += int(count) if MODEL in stack else 0
    if not executor:
        raise ValueError(f"no sample of {EXECUTOR} in the actor's profile")
    batches = run["batches"] / run["workers"]
    model_ms = model / RATE_PER_S / batches * 1000
    call_ms = executor / RATE_PER_S / batches * 1000
    return {
        "actor_batches": batches,
        "model_frame_ms": model_ms,
        "model_late_ms": model_ms - run["model_ms_per_batch"],
        "call_rest_ms": call_ms - model_ms,
        "outside_actor_ms": run["round_trip_ms_mean"] - call_ms,
    }


def one_run(point: Point, opts: Options, name: str) -> dict[str, Any]:
    """One measurement of ``point`` on a fresh broker and cluster, with its gap split."""
    run = measure(point, opts)
    if "error" not in run:
        run |= gap(run)
    parts = {k: run.get(k) for k in ("ratio_to_ideal", "round_trip_share", "slot_occupancy")}
    print(f"{name}: {parts}", flush=True)
    return run


def profiled_run(point: Point, opts: Options, profile: Path) -> dict[str, Any]:
    """One more run, profiled (py-spy takes CPU of its own: not one of the median's runs),
    with one actor's time per batch."""
    run = one_run(point, replace(opts, profile_to=profile, profile_actor=True), "profiled run")
    actor_profile = beside(profile, "actor")
    if actor_profile is not None and actor_profile.exists() and "error" not in run:
        lines = actor_profile.read_text().splitlines()
        try:
            run["actor_time_per_batch"] = actor_time(lines, run)
        except ValueError as exc:
            run["actor_time_error"] = str(exc)
        split = run.get("actor_time_per_batch", run.get("actor_time_error"))
        print(f"one actor's time per batch: {split}")
    return run


def plot(result: dict[str, Any], path: Path) -> None:
    """Left: each run's ratio to ideal, the median and the target; right: the profiled
    run's round trip by part, from one actor's side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (runs, trip) = plt.subplots(1, 2, figsize=(9, 4))
    ratios = [r["ratio_to_ideal"] for r in result["runs"] if "error" not in r]
    runs.bar(range(1, len(ratios) + 1), ratios, color="tab:blue")
    runs.axhline(result["target"], color="red", ls="--", label=f"target {result['target']}")
    if result["ratio_median"] is not None:
        runs.axhline(result["ratio_median"], color="black", label="median")
    runs.set_xticks(range(1, len(ratios) + 1))
    runs.set_xlabel("run")
    runs.set_ylabel("ratio to ideal")
    runs.legend(loc="lower right")
    profiled = result.get("profiled_run") or {}
    if "actor_time_per_batch" in profiled:
        parts = profiled["actor_time_per_batch"]
        shown = {
            "model": profiled["model_ms_per_batch"],
            "model, late": parts["model_late_ms"],
            "rest of the call": parts["call_rest_ms"],
            "outside the actor": parts["outside_actor_ms"],
        }
        bottom = 0.0
        for name, ms in shown.items():
            trip.bar(0, ms, bottom=bottom, label=name)
            bottom += ms
        trip.set_xticks([0], ["profiled run"])
        trip.set_ylabel("ms per batch (round trip)")
        trip.legend()
    median = result["ratio_median"]
    fig.suptitle(f"{result['point']}: median {median:.3f} of ideal" if median else "no run")
    fig.tight_layout()
    fig.savefig(path)


def main() -> int:
    """Run, print, write JSON and PNG; 1 when the median misses the target."""
    parser = argparse.ArgumentParser(prog="python -m bench.slots", description=__doc__)
    parser.add_argument("--point", default="32x4")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steady-s", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument(
        "--profile", type=Path, help="one more run, profiled by py-spy, to this file"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    configure_logging("console", "warning")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    (point,) = parse_points(args.point)
    opts = Options(args.steady_s, 3.0, args.batch_size, os.cpu_count() or 2, 0, 300.0)
    started = time.monotonic()
    runs = [one_run(point, opts, f"run {i}") for i in range(args.runs)]
    profiled = None if args.profile is None else profiled_run(point, opts, args.profile)
    ratios = [r["ratio_to_ideal"] for r in runs if "error" not in r]
    median = statistics.median(ratios) if ratios else None
    result = {
        "point": point.name,
        "runs": runs,
        "profiled_run": profiled,
        "ratio_median": median,
        "ratio_min": min(ratios, default=None),
        "ratio_max": max(ratios, default=None),
        "target": args.target,
        "meets_target": median is not None and median >= args.target,
        "machine": machine_info(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "wall_s": time.monotonic() - started,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "slots.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    plot(result, args.out / "slots.png")
    print(f"{point.name}: median ratio {median} over {len(ratios)} runs, target {args.target}")
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
