"""``python -m bench.pool_scale``: measure each point, print, write JSON and PNG (see
:mod:`bench.pool_scale`)."""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench import runner
from bench.pool_scale.points import DEFAULT_POINTS, Options, parse_points
from bench.pool_scale.render import console, plot, print_table
from bench.pool_scale.run import measure
from consumer.ops.logs import configure_logging


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = runner.parser(
        "A fixed pool of many workers (1 slot each, or K with "
        "--worker-concurrency K) on one Ray node with the synthetic model: molecules/s against "
        "the ideal rate, the consumer's CPU per batch, start-up and idle costs.",
        prog="python -m bench.pool_scale",
    )
    parser.add_argument(
        "--points",
        default=DEFAULT_POINTS,
        help="comma-separated W[xK][@MS]: W workers, K slots each (default 1), MS ms per "
        f"molecule (default 20); default {DEFAULT_POINTS}",
    )
    parser.add_argument("--steady-s", type=float, default=20.0, help="steady window per point")
    parser.add_argument("--idle-s", type=float, default=3.0, help="idle window per point")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--node-cpus", type=int, default=os.cpu_count() or 2, help="CPUs of the one Ray node"
    )
    parser.add_argument(
        "--startup-concurrency",
        type=int,
        default=0,
        help="Ray's worker_maximum_startup_concurrency: worker processes started at once "
        "(default 0: Ray's own, min(cores, node CPUs); more starts them all together, which on "
        "a small machine delays every one)",
    )
    parser.add_argument("--ready-timeout-s", type=float, default=300.0)
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    try:
        args.point_list = parse_points(args.points)
    except ValueError as exc:
        parser.error(str(exc))
    if not args.point_list:
        parser.error("--points is empty")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging("console", "warning")
    opts = Options(
        steady_s=args.steady_s,
        idle_s=args.idle_s,
        batch_size=args.batch_size,
        node_cpus=args.node_cpus,
        startup_concurrency=args.startup_concurrency,
        ready_timeout_s=args.ready_timeout_s,
    )
    started = time.monotonic()
    points = []
    for point in args.point_list:
        t = time.monotonic()
        console.log(
            f"point {point.name}: {point.workers} workers × {point.slots} slots, "
            f"{point.per_molecule_ms:g} ms/molecule"
        )
        result = measure(point, opts)
        result["point_wall_s"] = time.monotonic() - t
        points.append(result)
        console.log(f"point {point.name} done in {result['point_wall_s']:.0f} s")
    wall_s = time.monotonic() - started
    title = f"pool scale, batch {args.batch_size}, steady {args.steady_s:g} s, {wall_s:.0f} s"
    print_table(points, title)
    config = {k: v for k, v in vars(args).items() if k != "point_list"}
    result = {"config": config, "wall_s": wall_s, "points": points}
    path = runner.write_json(args.out / "pool_scale.json", result)
    console.print(f"wrote {path}")
    if not args.no_plot:
        plot(points, args.out / "pool_scale.png", title)
        console.print(f"wrote {args.out / 'pool_scale.png'}")
    if any("error" in p for p in points):
        return 2
    return 0 if all(p["meets_target"] is not False for p in points) else 1


if __name__ == "__main__":
    sys.exit(main())
