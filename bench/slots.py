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

With ``--profile`` the last run's steady window is profiled with py-spy (the consumer side).
Writes ``slots.json``.
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

from bench.pool_scale.points import Options, parse_points
from bench.pool_scale.run import measure
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


def main() -> int:
    """Run, print, write JSON; 1 when the median misses the target."""
    parser = argparse.ArgumentParser(prog="python -m bench.slots", description=__doc__)
    parser.add_argument("--point", default="32x4")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steady-s", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--profile", type=Path, help="py-spy profile of the last run's window")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    configure_logging("console", "warning")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    (point,) = parse_points(args.point)
    opts = Options(args.steady_s, 3.0, args.batch_size, os.cpu_count() or 2, 0, 300.0)
    started = time.monotonic()
    runs = []
    for i in range(args.runs):
        last = i == args.runs - 1
        run = measure(point, replace(opts, profile_to=args.profile if last else None))
        if "error" not in run:
            run |= gap(run)
        runs.append(run)
        parts = {k: run.get(k) for k in ("ratio_to_ideal", "round_trip_share", "slot_occupancy")}
        print(f"run {i}: {parts}", flush=True)
    ratios = [r["ratio_to_ideal"] for r in runs if "error" not in r]
    median = statistics.median(ratios) if ratios else None
    result = {
        "point": point.name,
        "runs": runs,
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
    print(f"{point.name}: median ratio {median} over {len(ratios)} runs, target {args.target}")
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
