"""``python -m bench.chaos``: run, analyse, render (see :mod:`bench.chaos`)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from bench import runner
from bench.chaos.render import console, plot, print_report
from bench.chaos.run import DEFAULT_AT, SCHEDULE, bench


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = runner.parser(
        "One long run through `molstream consume` with consumer kills, node "
        "losses and a broker freeze injected mid-stream; counts lost, duplicated and failed "
        "molecules and the catch-up time after each fault.",
        prog="python -m bench.chaos",
    )
    parser.add_argument("--molecules", type=int, default=50_000, help="molecules (>= 50,000)")
    parser.add_argument("--nodes", type=int, default=2, choices=(2, 3), help="Spot nodes")
    parser.add_argument("--per-molecule-ms", type=float, default=1.0)
    parser.add_argument("--max-in-flight", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--commit-interval-s", type=float, default=0.5)
    parser.add_argument("--shutdown-timeout-s", type=float, default=30.0)
    parser.add_argument("--freeze-s", type=float, default=15.0, help="broker SIGSTOP duration")
    parser.add_argument("--node-replace-delay-s", type=float, default=3.0)
    parser.add_argument(
        "--at",
        type=float,
        nargs=len(SCHEDULE),
        default=list(DEFAULT_AT),
        metavar="PCT",
        help=f"progress thresholds of the faults {', '.join(SCHEDULE)}",
    )
    parser.add_argument("--fault-wait-s", type=float, default=90.0, help="catch-up wait bound")
    parser.add_argument("--timeout-s", type=float, default=480.0, help="bound on the stream")
    parser.add_argument("--dlq-topic", default="molecules.dlq")
    parser.add_argument("--log-dir", default=None, help="consumer/broker logs (default: temp)")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    if args.molecules < 1:
        parser.error("--molecules must be >= 1")
    if args.log_dir is None:
        args.log_dir = tempfile.mkdtemp(prefix="molstream-chaos-")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.molecules < 50_000:
        console.log(f"[yellow]{args.molecules:,} molecules: below the 50,000 of the real run")
    started = time.monotonic()
    result = bench(args)
    wall_s = time.monotonic() - started
    result["wall_s"] = round(wall_s, 1)
    print_report(result, wall_s)
    path = runner.write_json(args.out / "chaos.json", result)
    console.print(f"wrote {path}; consumer log {result['consumer_log']}")
    if not args.no_plot:
        try:
            plot(result, args.out / "chaos.png")
            console.print(f"wrote {args.out / 'chaos.png'}")
        except Exception as exc:  # the plot is optional
            console.print(f"[yellow]no plot: {exc!r}")
    if result["lost"]:
        console.print(f"[bold red]{result['lost']:,} molecules LOST")
        return 1
    return 0 if all(result["checks"].values()) else 2


if __name__ == "__main__":
    sys.exit(main())
