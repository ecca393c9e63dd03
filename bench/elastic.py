"""The elastic pool on Spot capacity that arrives on a schedule, against the simulation.

Run: ``.venv/bin/python -m bench.elastic [--nodes 6] [--max-start 8,16] [--draws 1]``.
Prints a table and writes ``elastic.json`` (``--out``, default bench/results).

The job is the simulation's (:mod:`consumer.dev.simulation`, reuse mode) played in real time with
1 TU = ``--tu-s`` seconds: N inputs, a synthetic model that loads in 1 TU and predicts one
molecule in 1 TU, N one-CPU Spot nodes provisioned at p_i ~ Uniform(0, S) TU that join after
the 3 TU set-up (:func:`bench.reuse.draw_schedules`, :func:`bench.reuse.run_pool`). Unlike
``bench.reuse`` the pool starts empty (``--min-workers 0``): the lag wakes the autoscaler,
which asks for N workers; each joins as its node arrives.

Measured: makespan (first input published to last prediction acknowledged), the pool's
worker-seconds (``molstream_worker_seconds_total``: every worker from deploy to the end,
deploying included), the node time billed by the simulation's rule, and the time to the first
prediction. Beside them the simulation's makespan and cost for the same p_i, and its first
finish (min p_i + set-up + worker creation + one inference).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import runner
from bench.reuse.analyse import SETUP_TU
from bench.reuse.run import draw_schedules, run_pool
from consumer.dev.broker import EmbeddedBroker
from consumer.dev.simulate_cli import parse_max_starts
from consumer.dev.simulation import simulate_run
from consumer.ops.logs import configure_logging


def main() -> None:
    """Run each drawn schedule once through the elastic pool; print and write JSON."""
    parser = runner.parser(__doc__)
    parser.add_argument("--nodes", type=int, default=6, help="N inputs and N Spot nodes")
    parser.add_argument("--max-start", default="8,16", help="S values in TU, comma separated")
    parser.add_argument("--draws", type=int, default=1, help="schedules drawn per S")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tu-s", type=float, default=0.5, help="seconds per time unit")
    args = parser.parse_args()
    configure_logging("console", "warning")

    options = {"load_s": str(args.tu_s), "per_molecule_ms": str(args.tu_s * 1000)}
    schedules = draw_schedules(args.nodes, parse_max_starts(args.max_start), args.draws, args.seed)
    rows = []
    with EmbeddedBroker() as broker:
        for schedule in schedules:
            run = run_pool(schedule, args.tu_s, options, broker.bootstrap_servers, min_workers=0)
            sim = simulate_run(schedule.provision_tu, reuse=True)
            assert run.worker_seconds is not None
            rows.append(
                {
                    "max_start_tu": schedule.max_start_tu,
                    "provision_tu": schedule.provision_tu,
                    "makespan_tu": run.time_tu,
                    "worker_seconds_tu": run.worker_seconds / args.tu_s,
                    "billed_node_time_tu": run.cost_tu,
                    "first_prediction_tu": run.first_result_s / args.tu_s,
                    "sim_makespan_tu": sim.time,
                    "sim_cost_tu": sim.cost,
                    "sim_first_finish_tu": min(schedule.provision_tu) + SETUP_TU + 2.0,
                    "inputs_per_node": run.inputs_per_node,
                    "run": asdict(run),
                }
            )
    Console().print(_table(rows, args))
    result = {
        "config": {k: str(v) for k, v in vars(args).items()},
        "runs": rows,
    }
    runner.write_json(args.out / "elastic.json", result)
    Console().print(f"wrote {args.out / 'elastic.json'}")


def _table(rows: list[dict[str, Any]], args: argparse.Namespace) -> Table:
    """Measured against simulated, per drawn schedule."""
    table = Table(
        "S",
        "makespan",
        "sim",
        "worker-s",
        "billed",
        "sim cost",
        "first",
        "sim first",
        title=f"elastic pool, N = {args.nodes}, times in TU (1 TU = {args.tu_s:g} s)",
    )
    for r in rows:
        table.add_row(
            f"{r['max_start_tu']:g}",
            *(
                f"{r[k]:.1f}"
                for k in (
                    "makespan_tu",
                    "sim_makespan_tu",
                    "worker_seconds_tu",
                    "billed_node_time_tu",
                    "sim_cost_tu",
                    "first_prediction_tu",
                    "sim_first_finish_tu",
                )
            ),
        )
    return table


if __name__ == "__main__":
    main()
