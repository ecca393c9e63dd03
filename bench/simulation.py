"""Discrete simulation of worker reuse against one stateless task per input.

Model (time in TU, cost in node-TU): a job with N inputs requests N nodes at t = 0. Node i is
provisioned at p_i ~ Uniform(0, S) and needs ``setup_tu`` before it can work. In reuse mode a
node then creates one model worker (``worker_create_tu``) and runs one inference per input
(``inference_tu``); in no-reuse mode it runs one task per input that loads the model and infers
(``load_tu + inference_tu``). Inputs go, in order, to whichever node is free first. A node that
ran inputs is billed from p_i to its last finish; a node that ran none is billed from p_i to the
moment the last input started (nothing if it was provisioned later). A run's time is when the
last input finishes and its cost is the total billed node time.

The core (``simulate_run``, ``simulate_grid``, ``completed_by``) is pure; ``write_csv``,
``write_json``, ``plot`` and ``run`` do the I/O, and ``simulate_command`` is the typer command
the CLI registers as ``molstream simulate``.
"""

from __future__ import annotations

import csv
import heapq
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator
from rich.console import Console
from rich.table import Table

CSV_NAME = "simulation.csv"
PNG_NAME = "simulation.png"
JSON_NAME = "simulation.json"
COLUMNS = (
    "inputs",
    "max_start",
    "time_improvement",
    "cost_improvement",
    "time_reuse",
    "time_no_reuse",
    "cost_reuse",
    "cost_no_reuse",
)


@dataclass(frozen=True)
class RunResult:
    """Outcome of one simulated job: makespan (TU) and billed node time (node-TU)."""

    time: float
    cost: float


@dataclass(frozen=True)
class GridRow:
    """Run-averaged time and cost of both modes for one (inputs, max start) cell."""

    inputs: int
    max_start: float
    time_reuse: float
    time_no_reuse: float
    cost_reuse: float
    cost_no_reuse: float

    @property
    def time_improvement(self) -> float:
        """Fraction of the no-reuse time saved by reuse."""
        return (self.time_no_reuse - self.time_reuse) / self.time_no_reuse

    @property
    def cost_improvement(self) -> float:
        """Fraction of the no-reuse cost saved by reuse."""
        return (self.cost_no_reuse - self.cost_reuse) / self.cost_no_reuse

    def to_dict(self) -> dict[str, float]:
        """The row as a mapping keyed by ``COLUMNS``, in that order."""
        return {
            "inputs": self.inputs,
            "max_start": self.max_start,
            "time_improvement": self.time_improvement,
            "cost_improvement": self.cost_improvement,
            "time_reuse": self.time_reuse,
            "time_no_reuse": self.time_no_reuse,
            "cost_reuse": self.cost_reuse,
            "cost_no_reuse": self.cost_no_reuse,
        }


def simulate_run(
    provision_times: Sequence[float],
    *,
    reuse: bool,
    setup_tu: float = 3.0,
    worker_create_tu: float = 1.0,
    inference_tu: float = 1.0,
    load_tu: float = 1.0,
) -> RunResult:
    """Simulate one job with one input per node, nodes provisioned at ``provision_times``."""
    if not provision_times:
        raise ValueError("provision_times must not be empty")
    provisioned = sorted(provision_times)
    # Worker creation happens once per node, so in reuse mode it belongs to the node's warm-up
    # and every input afterwards costs the same fixed task time.
    warmup = setup_tu + worker_create_tu if reuse else setup_tu
    task = inference_tu if reuse else load_tu + inference_tu
    ready = [p + warmup for p in provisioned]
    # Free times of the nodes that took an input. Idle nodes are picked in ready order, so the
    # nodes used are always a prefix of `ready` and need no heap entry until their first input.
    # With one node per input a fresh node always exists; on a tie the fresh node wins.
    busy: list[float] = []
    used = 0
    start = 0.0
    for _ in range(len(ready)):
        if not busy or ready[used] <= busy[0]:
            start = ready[used]
            heapq.heappush(busy, start + task)
            used += 1
        else:
            start = busy[0]
            heapq.heapreplace(busy, start + task)
    last_start = start
    cost = sum(busy) - sum(provisioned[:used])
    cost += sum(max(0.0, last_start - p) for p in provisioned[used:])
    return RunResult(time=max(busy), cost=cost)


def completed_by(
    provision_times: Sequence[float],
    t: float,
    *,
    wait_for_all: bool,
    setup_tu: float = 3.0,
    worker_create_tu: float = 1.0,
    inference_tu: float = 1.0,
) -> int:
    """Count inferences a reuse pool with unlimited inputs has finished by time ``t``.

    Each instance starts as soon as it is provisioned, or, with ``wait_for_all``, all start
    together at the last provisioning time.
    """
    last = max(provision_times)
    done = 0
    for p in provision_times:
        begin = (last if wait_for_all else p) + setup_tu + worker_create_tu
        if t >= begin:
            # The epsilon keeps an inference that ends exactly at t from being lost to rounding.
            done += math.floor((t - begin) / inference_tu + 1e-9)
    return done


def simulate_grid(
    inputs: Sequence[int], max_starts: Sequence[float], *, runs: int, seed: int
) -> list[GridRow]:
    """Average both modes over ``runs`` shared draws for every (inputs, max start) pair."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    if any(n < 1 for n in inputs):
        raise ValueError(f"input counts must be at least 1, got {list(inputs)}")
    if any(not 0.0 <= s < math.inf for s in max_starts):
        raise ValueError(f"max starts must be finite and non-negative, got {list(max_starts)}")
    rng = np.random.default_rng(seed)
    rows: list[GridRow] = []
    for n in inputs:
        for s in max_starts:
            draws = rng.uniform(0.0, s, size=(runs, n)).tolist()
            reuse = [simulate_run(d, reuse=True) for d in draws]
            no_reuse = [simulate_run(d, reuse=False) for d in draws]
            rows.append(
                GridRow(
                    inputs=n,
                    max_start=float(s),
                    time_reuse=_mean([r.time for r in reuse]),
                    time_no_reuse=_mean([r.time for r in no_reuse]),
                    cost_reuse=_mean([r.cost for r in reuse]),
                    cost_no_reuse=_mean([r.cost for r in no_reuse]),
                )
            )
    return rows


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


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
    values: set[int] = set()
    for item in _split(text, "--inputs"):
        try:
            value = int(item)
        except ValueError:
            raise typer.BadParameter(
                f"{item!r} is not an integer", param_hint="'--inputs'"
            ) from None
        if value < 1:
            raise typer.BadParameter(f"{value} is not a count >= 1", param_hint="'--inputs'")
        values.add(value)
    return sorted(values)


def parse_max_starts(text: str) -> list[float]:
    """Parse comma separated max start times (finite numbers >= 0), sorted and de-duplicated."""
    values: set[float] = set()
    for item in _split(text, "--max-start"):
        try:
            value = float(item)
        except ValueError:
            raise typer.BadParameter(
                f"{item!r} is not a number", param_hint="'--max-start'"
            ) from None
        if not 0.0 <= value < math.inf:
            raise typer.BadParameter(
                f"{item!r} is not a finite time >= 0", param_hint="'--max-start'"
            )
        values.add(value)
    return sorted(values)


def _split(text: str, option: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise typer.BadParameter(f"empty value in {text!r}", param_hint=f"'{option}'")
    return items


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
