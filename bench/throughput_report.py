"""Throughput, reported: the acceptance checks, the tables and the plot of the rates
(:mod:`bench.throughput` measures them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def acceptance(result: dict[str, Any]) -> dict[str, bool]:
    """The targets of issue 12, each met or not in this run."""
    checks = {
        "zero_cost_over_kafka_produce >= 0.5": result["ratio_zero_cost_over_kafka_produce"] >= 0.5,
        "end_to_end_over_raw >= 0.9": result["ratio_end_to_end_over_raw"] >= 0.9,
    }
    for w in (result["latency"] or {}).get("windows", []):
        if w["load"] == 0.5:
            checks["p99 at 50% load <= 2x floor"] = w["p99_over_floor"] <= 2
    return checks


def print_tables(result: dict[str, Any], console: Console) -> None:
    """The rates, then the latency windows."""
    console.print(_rates_table(result))
    if result["latency"] is None:
        return
    windows = result["latency"]["windows"]
    console.print(_latency_table(windows))
    console.print(_cores_table(windows))


def _rates_table(result: dict[str, Any]) -> Table:
    """The rates of every step and their ratios."""
    kafka, zero = result["kafka_alone"], result["synthetic_zero_cost_end_to_end"]
    ref1, ref2 = result["reference_end_to_end"], result["reference_end_to_end_2_workers"]
    zero_cost = (
        f"zero-cost pipeline, 2 workers, batch {zero['batch_size']} (steady; consumer "
        f"{zero['cpu_us_per_molecule']:.0f} µs CPU/molecule, {zero['driver_cpu_share']:.2f} core)"
    )
    table = Table("measurement", "per s", "machine cores (other)", title="throughput")

    def add(name: str, value: float, step: dict[str, Any] | None = None) -> None:
        cores = ""
        if step is not None:
            load = step["machine_load"]
            cores = f"{load['machine_cores']['mean']:.2f} ({load['other_cores']['mean']:.2f})"
        table.add_row(name, f"{value:.2f}" if name.startswith("ratio") else f"{value:,.0f}", cores)

    add(
        "Kafka alone: produce (send each, all acked), records",
        kafka["produce_records_per_s"],
        kafka,
    )
    add("Kafka alone: consume (getmany, decode each), records", kafka["consume_records_per_s"])
    add(zero_cost, zero["steady_molecules_per_s"], zero)
    add(
        "ratio zero-cost / Kafka produce (target ≥ 0.5)",
        result["ratio_zero_cost_over_kafka_produce"],
    )
    raw_step = {"machine_load": result["raw_machine_load"]}
    add("reference model, raw, one process", result["raw_molecules_per_s"], raw_step)
    add("reference, end to end, 1 worker (steady)", ref1["steady_molecules_per_s"], ref1)
    add("reference, end to end, 1 worker (with start-up)", ref1["total_molecules_per_s"])
    add("ratio 1 worker steady / raw (target ≥ 0.9)", result["ratio_end_to_end_over_raw"])
    add("reference, end to end, 2 workers (steady): capacity", ref2["steady_molecules_per_s"], ref2)
    add("ratio 2 workers steady / (2 x raw)", result["ratio_2_workers_over_2x_raw"])
    return table


def _latency_table(windows: list[dict[str, Any]]) -> Table:
    """Per latency window: its rate, percentiles, floor and the read-back's cross-check."""
    table = Table(
        *("load", "rate/s (achieved)", "n", "p50", "p90", "p99", "max", "floor", "p99/floor"),
        *("mean batch", "read-back p50/p99"),
        title="latency (ms): input record timestamp -> prediction acknowledged",
    )
    for w in windows:
        lat, back = w["latency"], w["readback"]
        table.add_row(
            f"{w['load']:.0%}",
            f"{w['rate_per_s']:.0f} ({back['achieved_rate_per_s']:.0f})",
            str(w["molecules"]),
            *(f"{lat[k]:.0f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
            f"{w['floor_ms']:.0f}",
            f"{w['p99_over_floor']:.2f}",
            f"{w['mean_batch_size']:.1f}",
            f"{back['p50_ms']:.0f}/{back['p99_ms']:.0f}",
        )
    return table


def _cores_table(windows: list[dict[str, Any]]) -> Table:
    """What the machine's cores did during each latency window."""
    groups = ("machine", "consumer", "producer", "broker", "ray", "other")
    table = Table(
        "load", *groups, "all cores busy", "load avg", title="cores used during the windows (mean)"
    )
    for w in windows:
        load = w["machine_load"]
        table.add_row(
            f"{w['load']:.0%}",
            *(f"{load[f'{g}_cores']['mean']:.2f}" for g in groups),
            f"{load['saturated_share']:.0%} of samples"
            + (" SATURATED" if w["machine_saturated"] else ""),
            f"{load['load_avg_1m']['mean']:.1f}",
        )
    return table


def plot_rates(result: dict[str, Any], path: Path) -> None:
    """The rates as bars, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kafka, zero = result["kafka_alone"], result["synthetic_zero_cost_end_to_end"]
    bars = {
        "Kafka alone: produce": kafka["produce_records_per_s"],
        "Kafka alone: consume": kafka["consume_records_per_s"],
        f"zero-cost pipeline, 2 workers, batch {zero['batch_size']}": zero[
            "steady_molecules_per_s"
        ],
        "reference model raw, 1 process": result["raw_molecules_per_s"],
        "reference end to end, 1 worker": result["reference_end_to_end"]["steady_molecules_per_s"],
        "reference end to end, 2 workers": result["reference_end_to_end_2_workers"][
            "steady_molecules_per_s"
        ],
    }
    names, values = list(bars)[::-1], list(bars.values())[::-1]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.barh(names, values, color=["C0", "C0", "C1", "C2", "C2", "C2"][::-1])
    for i, value in enumerate(values):
        ax.annotate(f"{value:,.0f}", (value, i), xytext=(3, 0), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlim(right=max(values) * 4)  # room for the labels
    ax.set_xlabel("records or molecules per second (steady)")
    ax.set_title(
        f"zero-cost / Kafka produce {result['ratio_zero_cost_over_kafka_produce']:.2f}; "
        f"end to end / raw {result['ratio_end_to_end_over_raw']:.2f}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
