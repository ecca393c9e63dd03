"""``molstream simulate``: the reuse simulation's grid written as CSV, JSON and a plot
(:mod:`consumer.dev.simulation` is its pure core)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, TypeVar

import numpy as np
import typer
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator
from rich.console import Console
from rich.table import Table

from consumer.dev.simulation import COLUMNS, GridRow, simulate_grid

N = TypeVar("N", int, float)

CSV_NAME = "simulation.csv"


PNG_NAME = "simulation.png"


JSON_NAME = "simulation.json"


def write_csv(rows: Sequence[GridRow], path: Path) -> None:
    """Write the rows to ``path`` as CSV with the ``COLUMNS`` header."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(row.to_dict() for row in rows)


def write_json(rows: Sequence[GridRow], path: Path) -> None:
    """Write the rows to ``path`` as a JSON list of row objects."""
    path.write_text(json.dumps([row.to_dict() for row in rows], indent=2) + "\n")


def plot(rows: Sequence[GridRow], path: Path) -> None:
    """Draw time (solid) and cost (dashed) improvement against inputs and against max start."""
    by_cell = {(row.inputs, row.max_start): row for row in rows}
    input_values = sorted({row.inputs for row in rows})
    start_values = sorted({row.max_start for row in rows})

    # Plain Figure + Agg canvas: no pyplot global state and no GUI backend in a headless run.
    fig = Figure(figsize=(7.2, 3.2), dpi=200, layout="constrained")
    FigureCanvasAgg(fig)
    ax_n, ax_s = fig.subplots(1, 2, sharey=True)

    start_colors = _palette(len(start_values))
    for color, s in zip(start_colors, start_values, strict=True):
        cells = [by_cell[(n, s)] for n in input_values if (n, s) in by_cell]
        _draw_pair(ax_n, [c.inputs for c in cells], cells, color, f"S = {s:g}")
    ax_n.set_xscale("log")
    ax_n.set_xlabel("number of inputs N", fontsize=8)
    ax_n.set_title("(a) against number of inputs", fontsize=9)
    ax_n.legend(title="max start", fontsize=6.5, title_fontsize=7, loc="upper left")

    input_colors = _palette(len(input_values))
    for color, n in zip(input_colors, input_values, strict=True):
        cells = [by_cell[(n, s)] for s in start_values if (n, s) in by_cell]
        _draw_pair(ax_s, [c.max_start for c in cells], cells, color, f"N = {n}")
    # symlog rather than log so S = 0 (no provisioning spread) stays on the axis: linear in [0, 1],
    # logarithmic above.
    ax_s.set_xscale("symlog", linthresh=1.0)
    ax_s.set_xlabel("maximum node start time S (TU)", fontsize=8)
    ax_s.set_title("(b) against max start time", fontsize=9)
    ax_s.legend(title="inputs", fontsize=6.5, title_fontsize=7, loc="upper left")

    for ax, ticks in ((ax_n, input_values), (ax_s, start_values)):
        ax.set_xticks(ticks, labels=[f"{v:g}" for v in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.grid(True, linewidth=0.4, alpha=0.5)
        ax.tick_params(labelsize=7)
    ax_n.set_ylabel("improvement of reuse (%)", fontsize=8)
    ax_s.tick_params(labelleft=False)
    fig.suptitle("Worker reuse vs. one task per input: solid = time, dashed = cost", fontsize=9)
    fig.savefig(path)


def _palette(count: int) -> list[tuple[float, float, float, float]]:
    cmap = colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.0, 0.85, count)]


def _draw_pair(
    ax: Axes,
    xs: Sequence[float],
    cells: Sequence[GridRow],
    color: tuple[float, float, float, float],
    label: str,
) -> None:
    time_pct = [100.0 * c.time_improvement for c in cells]
    cost_pct = [100.0 * c.cost_improvement for c in cells]
    ax.plot(xs, time_pct, color=color, marker="o", markersize=3, linewidth=1.2, label=label)
    ax.plot(xs, cost_pct, color=color, marker="s", markersize=3, linewidth=1.0, linestyle="--")


def run(
    out_dir: Path,
    inputs: Sequence[int],
    max_starts: Sequence[float],
    runs: int,
    seed: int,
) -> list[GridRow]:
    """Simulate the grid and write the CSV, PNG and JSON into ``out_dir``."""
    rows = simulate_grid(inputs, max_starts, runs=runs, seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out_dir / CSV_NAME)
    plot(rows, out_dir / PNG_NAME)
    write_json(rows, out_dir / JSON_NAME)
    return rows


def parse_inputs(text: str) -> list[int]:
    """Parse comma separated input counts (integers >= 1), sorted and de-duplicated."""
    return _parse(text, "--inputs", int, "an integer", lambda v: v >= 1, "a count >= 1")


def parse_max_starts(text: str) -> list[float]:
    """Parse comma separated max start times (finite numbers >= 0), sorted and de-duplicated."""
    return _parse(
        text, "--max-start", float, "a number", lambda v: 0.0 <= v < math.inf, "a finite time >= 0"
    )


def _parse(
    text: str,
    option: str,
    convert: Callable[[str], N],
    kind: str,
    valid: Callable[[N], bool],
    rule: str,
) -> list[N]:
    """The comma separated values of ``option``, each converted and checked, sorted and
    de-duplicated; a bad one is a usage error naming the option."""
    hint = f"'{option}'"
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise typer.BadParameter(f"empty value in {text!r}", param_hint=hint)
    values: set[N] = set()
    for item in items:
        try:
            value = convert(item)
        except ValueError:
            raise typer.BadParameter(f"{item!r} is not {kind}", param_hint=hint) from None
        if not valid(value):
            raise typer.BadParameter(f"{item!r} is not {rule}", param_hint=hint)
        values.add(value)
    return sorted(values)


def simulate_command(
    inputs: Annotated[
        str, typer.Option(help="Number of inputs per job, as comma separated input counts.")
    ] = "1,10,100,1000",
    max_start: Annotated[
        str,
        typer.Option(help="Maximum node start time S in TU, as comma separated values >= 0."),
    ] = "0,1,10,100,1000",
    runs: Annotated[
        int, typer.Option(min=1, help="Simulated jobs per (inputs, max start) pair.")
    ] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the random provisioning times.")] = 0,
    out: Annotated[Path, typer.Option(help="Directory for simulation.csv, .png and .json.")] = Path(
        "out/simulation"
    ),
) -> None:
    """Simulate worker reuse against one task per input and write a table and a figure."""
    input_counts = parse_inputs(inputs)
    max_starts = parse_max_starts(max_start)
    rows = run(out, input_counts, max_starts, runs, seed)

    table = Table(title=f"Worker reuse vs. no reuse ({runs} runs, seed {seed})")
    headers = ("N", "S (TU)", "time impr.", "cost impr.")
    for header in (*headers, "time reuse", "time no-reuse", "cost reuse", "cost no-reuse"):
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(
            str(row.inputs),
            f"{row.max_start:g}",
            f"{100 * row.time_improvement:.1f}%",
            f"{100 * row.cost_improvement:.1f}%",
            f"{row.time_reuse:.1f}",
            f"{row.time_no_reuse:.1f}",
            f"{row.cost_reuse:.1f}",
            f"{row.cost_no_reuse:.1f}",
        )
    console = Console()
    console.print(table)
    for name in (CSV_NAME, PNG_NAME, JSON_NAME):
        console.print(f"wrote {out / name}")
