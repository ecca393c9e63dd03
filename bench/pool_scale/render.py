"""The pool-scale table and plot."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.pool_scale.points import TARGETS

console = Console(width=None if sys.stdout.isatty() else 160)


def _f(value: object, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def print_table(points: list[dict[str, Any]], title: str) -> None:
    """Two tables, one row per point: rates, then costs."""
    rates = Table(
        "point",
        "W×K",
        "ms/mol",
        "ready s first/median/all",
        "ideal/s",
        "mol/s",
        "ratio",
        "target",
        "round trip ms / model",
        "occupancy",
        "in flight",
        "awaiting ack",
        "bound",
        title=f"{title}: rates",
    )
    costs = Table(
        "point",
        "consumer ms/batch (marginal)",
        "consumer cores",
        "consumer RSS MB",
        "idle actors cores (ms/s each)",
        "actors cores",
        "actor RSS/PSS MB",
        "Ray+broker cores",
        "machine cores",
        "others",
        title=f"{title}: costs",
    )
    for p in points:
        head = [p["point"], f"{p['workers']}×{p['slots']}", f"{p['per_molecule_ms']:g}"]
        if "error" in p:
            rates.add_row(*head, f"[red]{p['error']}")
            continue
        rates.add_row(*head, *_rates(p))
        costs.add_row(p["point"], *_costs(p))
    console.print(rates)
    console.print(costs)
    console.print(
        "ratio: molecules/s ÷ ideal; round trip: a batch's mean time from slot taken to slot "
        "given back; occupancy: slots held / slots; in flight: mean molecules fetched and not "
        "done / the bound; awaiting ack: mean molecules computed, not yet acknowledged; "
        "cores: CPU s per s; marginal: beyond the consumer's idle CPU; "
        "others: machine busy beyond this process tree (other work)"
    )


def _rates(p: dict[str, Any]) -> list[str]:
    """A measured point's cells of the rates table, after its name, size and cost."""
    target = p["target_ratio"]
    verdict = "" if p["meets_target"] is None else (" ok" if p["meets_target"] else " MISS")
    ready = "/".join(_f(p[k], ".1f") for k in ("first_ready_s", "median_ready_s", "ready_s"))
    return [
        ready,
        f"{p['ideal_molecules_per_s']:,.0f}",
        f"{p['molecules_per_s']:,.0f}",
        f"{p['ratio_to_ideal']:.3f}" + ("" if p["backlog_held"] else " (short)"),
        ("–" if target is None else f"≥ {target:g}") + verdict,
        f"{p['round_trip_ms_mean']:.1f} / {p['model_ms_per_batch']:g}",
        f"{p['slot_occupancy']:.3f}",
        f"{p['in_flight_mean']:,.0f} / {p['max_in_flight']:,}",
        f"{p['awaiting_ack_mean']:,.0f}",
        p["bound"],
    ]


def _costs(p: dict[str, Any]) -> list[str]:
    """A measured point's cells of the costs table, after its name."""
    return [
        f"{p['consumer_cpu_ms_per_batch']:.2f} ({p['consumer_marginal_ms_per_batch']:.2f})",
        f"{p['consumer_cores']:.2f}",
        f"{p['consumer_rss_mb_peak']:.0f}",
        f"{p['idle_actors_cores']:.2f} ({p['idle_ms_per_s_per_actor']:.1f})",
        f"{p['actors_cores']:.2f}",
        f"{p['actor_rss_mb_mean']:.0f} / {p['actor_pss_mb_mean']:.0f}",
        f"{p['rest_cores']:.2f}",
        f"{p['machine_cores']:.2f}",
        f"{p['other_cores']:.2f}",
    ]


def plot(points: list[dict[str, Any]], path: Path, title: str) -> None:
    """Ratio to ideal per point (targets marked) over consumer CPU per batch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    done = [p for p in points if "error" not in p]
    x = list(range(len(done)))
    fig = Figure(figsize=(max(6.0, 1.3 * len(done) + 2), 7.0))
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    colours = [
        "tab:blue" if p["meets_target"] is None else "tab:green" if p["meets_target"] else "tab:red"
        for p in done
    ]
    bars = top.bar(x, [p["ratio_to_ideal"] for p in done], color=colours)
    top.bar_label(bars, labels=[f"{p['ratio_to_ideal']:.3f}" for p in done], fontsize=8)
    for ratio, style in zip(sorted({t.ratio for t in TARGETS.values()}), (":", "--"), strict=False):
        top.axhline(ratio, color="grey", linestyle=style, linewidth=1, label=f"{ratio:g} of ideal")
    top.set_ylim(0, 1.1)
    top.set_ylabel("molecules/s ÷ ideal")
    top.legend(loc="lower left", fontsize=8)
    top.set_title(title, fontsize=10)
    total = [p["consumer_cpu_ms_per_batch"] for p in done]
    bars = bottom.bar(x, total, color="lightgrey", label="all of the consumer's CPU")
    bottom.bar(
        x,
        [p["consumer_marginal_ms_per_batch"] for p in done],
        width=0.5,
        color="tab:grey",
        label="beyond its idle CPU",
    )
    bottom.bar_label(bars, labels=[f"{p['consumer_cores']:.2f} core" for p in done], fontsize=8)
    bottom.set_ylabel("consumer CPU ms per batch")
    bottom.legend(loc="upper right", fontsize=8)
    bottom.set_xticks(x, [f"{p['point']}\n{p['bound']}" for p in done])
    bottom.set_xlabel("point W[xK][@ms] and its bound; green: target met, red: missed")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
