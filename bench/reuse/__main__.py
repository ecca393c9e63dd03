"""``python -m bench.reuse``: every schedule with both approaches; table, JSON and PNG."""

from __future__ import annotations

import time

from rich.console import Console

from bench import runner
from bench.reuse.analyse import SETUP_TU, Comparison, Measured, Schedule, summarize
from bench.reuse.render import plot, table
from bench.reuse.run import draw_schedules, run_approach1, run_pool
from consumer.dev.broker import EmbeddedBroker
from consumer.dev.simulate_cli import parse_max_starts
from consumer.ops.logs import configure_logging

JSON_NAME = "reuse.json"

PNG_NAME = "reuse.png"


def main() -> None:
    """Run every schedule with both approaches, print the table, write JSON and PNG."""
    parser = runner.parser(
        "Worker reuse on a real Ray cluster: Approach #1 against the pool.",
        prog="python -m bench.reuse",
    )
    parser.add_argument("--inputs", type=int, default=6, help="inputs N = nodes requested")
    parser.add_argument("--max-start", default="0,4,8", help="max provisioning times S (TU)")
    parser.add_argument("--draws", type=int, default=2, help="provisioning draws per S")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tu-s", type=float, default=0.5, help="seconds per time unit")
    args = parser.parse_args()
    if not 1 <= args.inputs <= 8:
        parser.error("--inputs must be 1..8 (one local Ray node per input)")
    configure_logging("console", "warning")
    console = Console()
    options = {"load_s": f"{args.tu_s:g}", "per_molecule_ms": f"{1000 * args.tu_s:g}"}
    schedules = draw_schedules(args.inputs, parse_max_starts(args.max_start), args.draws, args.seed)
    started = time.monotonic()
    comparisons = _compare(schedules, args.tu_s, options, console)
    elapsed = time.monotonic() - started
    Console(width=max(console.width, 200)).print(table(comparisons, args.tu_s))
    result = {
        "config": {
            "inputs": args.inputs,
            "nodes": args.inputs,
            "tu_s": args.tu_s,
            "setup_tu": SETUP_TU,
            "model_options": options,
            "batch_size": 1,
            "seed": args.seed,
            "draws": args.draws,
            "node_arrival": "pre-started nodes, each held by a placement group until p_i + 3 TU",
        },
        "elapsed_s": elapsed,
        "summary": summarize(comparisons),
        "runs": [c.to_dict() for c in comparisons],
    }
    runner.write_json(args.out / JSON_NAME, result)
    plot(comparisons, args.out / PNG_NAME)
    console.print(f"wrote {args.out / JSON_NAME} and {args.out / PNG_NAME} in {elapsed:.0f} s")


def _compare(
    schedules: list[Schedule], tu_s: float, options: dict[str, str], console: Console
) -> list[Comparison]:
    """Each schedule with both approaches, in alternating order."""
    comparisons = []
    with EmbeddedBroker() as broker:
        for k, schedule in enumerate(schedules):
            console.print(
                f"S = {schedule.max_start_tu:g} TU, draw {schedule.draw}: p = "
                + ", ".join(f"{p:.2f}" for p in schedule.provision_tu)
            )
            # Alternate the order so that neither approach always runs on a warmer machine.
            runs: dict[str, Measured] = {}
            order = ("approach1", "molstream") if k % 2 == 0 else ("molstream", "approach1")
            for name in order:
                if name == "approach1":
                    runs[name] = run_approach1(schedule, tu_s, options)
                else:
                    runs[name] = run_pool(schedule, tu_s, options, broker.bootstrap_servers)
                console.print(f"  {name}: {runs[name].time_s:.2f} s")
            comparisons.append(Comparison(schedule, runs["approach1"], runs["molstream"], tu_s))
    return comparisons


if __name__ == "__main__":
    main()
