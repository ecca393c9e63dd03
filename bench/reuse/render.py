"""Worker reuse, rendered: the table and the PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.table import Table

from bench.reuse.analyse import Comparison, summarize


def plot(comparisons: Sequence[Comparison], path: Path) -> None:
    """Measured against simulated improvement, time and cost, one group of bars per draw."""
    fig = Figure(figsize=(7.2, 3.0), dpi=160, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    labels = [f"S={c.schedule.max_start_tu:g}\n#{c.schedule.draw}" for c in comparisons]
    xs = np.arange(len(comparisons))
    for ax, attr, key, title in (
        (axes[0], "time_s", "time_improvement", "time"),
        (axes[1], "cost_tu", "cost_improvement", "cost (node-time)"),
    ):
        measured = [100 * c.improvement(attr) for c in comparisons]
        simulated = [100 * c.simulated()[key] for c in comparisons]
        started = [100 * c.simulated(c.worker_start_tu())[key] for c in comparisons]
        ax.bar(xs - 0.27, measured, width=0.27, label="measured", color="#3b528b")
        ax.bar(xs, simulated, width=0.27, label="simulated", color="#5ec962")
        ax.bar(xs + 0.27, started, width=0.27, label="sim. + worker start", color="#b5de2b")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(xs, labels=labels, fontsize=7)
        ax.set_title(f"{title} improvement of the pool", fontsize=9)
        ax.grid(True, axis="y", linewidth=0.4, alpha=0.5)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("(approach 1 - pool) / approach 1 (%)", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.savefig(path)


def table(comparisons: Sequence[Comparison], tu_s: float) -> Table:
    """Per draw and per max start: measured against simulated improvements."""
    table = Table(title=f"Approach 1 (task per input) vs molstream pool; 1 TU = {tu_s:g} s")
    for header in (
        "S",
        "p_i (TU)",
        "time A1",
        "time pool",
        "time impr.",
        "sim",
        "sim+start",
        "cost A1",
        "cost pool",
        "cost impr.",
        "sim",
        "sim+start",
        "from add",
        "inputs/node A1 | pool",
    ):
        table.add_column(header, justify="right")
    for c in comparisons:
        table.add_row(*_measured(c))
    summary = summarize(comparisons)
    if len(summary) < len(comparisons):
        table.add_section()
        for row in summary:
            table.add_row(*_mean(row), style="bold")
    return table


def _measured(c: Comparison) -> list[str]:
    """One draw's row: both approaches measured, and the simulation's improvements."""
    sim = c.simulated()
    start = c.simulated(c.worker_start_tu())
    return [
        f"{c.schedule.max_start_tu:g}",
        " ".join(f"{p:.1f}" for p in sorted(c.schedule.provision_tu)),
        f"{c.approach1.time_tu:.1f}",
        f"{c.molstream.time_tu:.1f}",
        f"{100 * c.improvement('time_s'):.0f}%",
        f"{100 * sim['time_improvement']:.0f}%",
        f"{100 * start['time_improvement']:.0f}%",
        f"{c.approach1.cost_tu:.1f}",
        f"{c.molstream.cost_tu:.1f}",
        f"{100 * c.improvement('cost_tu'):.0f}%",
        f"{100 * sim['cost_improvement']:.0f}%",
        f"{100 * start['cost_improvement']:.0f}%",
        f"{100 * c.improvement('cost_from_add_tu'):.0f}%",
        f"{''.join(map(str, c.approach1.inputs_per_node))} | "
        f"{''.join(map(str, c.molstream.inputs_per_node))}",
    ]


def _mean(row: dict[str, float]) -> list[str]:
    """The mean improvements of one max start's draws."""
    return [
        f"{row['max_start_tu']:g}",
        f"mean of {row['draws']:g}",
        "",
        "",
        f"{100 * row['time_improvement']:.0f}%",
        f"{100 * row['time_improvement_simulated']:.0f}%",
        f"{100 * row['time_improvement_simulated_with_worker_start']:.0f}%",
        "",
        "",
        f"{100 * row['cost_improvement']:.0f}%",
        f"{100 * row['cost_improvement_simulated']:.0f}%",
        f"{100 * row['cost_improvement_simulated_with_worker_start']:.0f}%",
        f"{100 * row['cost_from_add_improvement']:.0f}%",
        "",
    ]
