"""Chaos, rendered: the tables on the console and the PNG."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.chaos.analyse import CATCH_FRACTION, Sample, rate

console = Console(width=None if sys.stdout.isatty() else 140)


def print_report(result: dict[str, Any], wall_s: float) -> None:
    """The counts, the faults, then what failed or looked odd."""
    console.print(_counts_table(result, wall_s))
    console.print(_faults_table(result["faults"]))
    failed = [k for k, ok in result["checks"].items() if not ok]
    if failed:
        console.print(f"[bold red]checks failed: {', '.join(failed)}")
    if result["anomalies"]:
        console.print(f"[yellow]anomalies: {result['anomalies']}")


def _counts_table(result: dict[str, Any], wall_s: float) -> Table:
    """What came out of the run: counts, rates, the final shutdown."""
    table = Table("measure", "value", title="chaos: one run, faults injected mid-stream")
    table.add_row("molecules published", f"{result['published']:,}")
    table.add_row("distinct ids predicted", f"{result['distinct_predicted']:,}")
    style = "green" if result["lost"] == 0 else "bold red"
    table.add_row("lost", f"[{style}]{result['lost']:,}[/]")
    table.add_row("predictions (incl. duplicates)", f"{result['predictions_total']:,}")
    table.add_row("duplicates", f"{result['duplicates']:,}")
    hist = ", ".join(f"{k}x: {v:,}" for k, v in result["duplicate_histogram"].items()) or "-"
    table.add_row("duplicate histogram (ids by times predicted)", hist)
    table.add_row("dead letters (molecules.dlq)", str(result["dead_letters"]))
    table.add_row("FAILED predictions", str(result["failed_predictions"]))
    table.add_row("stream time (s)", str(result["stream_s"]))
    table.add_row("overall molecules/s", str(result["molecules_per_s_overall"]))
    table.add_row("median pre-fault molecules/s", str(result["molecules_per_s_pre_fault_median"]))
    sd = result["final_shutdown"]
    table.add_row(
        "SIGTERM → exit",
        f"code {sd['exit_code']} in {sd['took_s']} s (timeout {sd['shutdown_timeout_s']:g} s)",
    )
    table.add_row("wall time (s)", f"{wall_s:.1f}")
    return table


def _faults_table(faults_run: list[dict[str, Any]]) -> Table:
    """One row per fault: when, and how the stream caught up."""
    faults = Table(
        "#",
        "kind",
        "at %",
        "t (s)",
        "restored (s)",
        "pre-fault /s",
        "catch-up (s)",
        "after restore (s)",
        "dups caused",
        "dups seen until next",
        title="faults",
    )
    for i, f in enumerate(faults_run, 1):
        cu = "-" if f["catch_up_s"] is None else f"{f['catch_up_s']:.2f}"
        if f["stream_ended_first"]:
            cu += " (end)"
        faults.add_row(
            str(i),
            f["kind"],
            f"{f['progress_pct']:.1f}",
            f"{f['t_s']:.1f}",
            "-" if f["restored_t_s"] is None else f"{f['restored_t_s']:.1f}",
            str(f["pre_rate_per_s"]),
            cu,
            "-" if f["catch_up_after_restore_s"] is None else f"{f['catch_up_after_restore_s']}",
            str(f["duplicates_caused"]),
            str(f["duplicates_seen_until_next"]),
        )
    return faults


def plot(result: dict[str, Any], path: Path) -> None:
    """Distinct ids and the 1-s rate over time, faults shaded, catch-ups marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    timeline = result["timeline"]
    if len(timeline) < 2:
        return
    t = [row[0] for row in timeline]
    distinct = [row[1] for row in timeline]
    total = [row[2] for row in timeline]
    samples = [Sample(a, b, c) for a, b, c in timeline]
    rt = [x for x in t if x >= 1.0]
    rates = [rate(samples, x - 1.0, x) or 0.0 for x in rt]
    fig = Figure(figsize=(11, 6.5), constrained_layout=True)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(t, distinct, label="distinct ids predicted")
    top.plot(t, total, label="predictions incl. duplicates", linestyle="--", linewidth=0.8)
    for part, prog in result.get("partition_progress", {}).items():
        step = prog["bucket_s"]
        cumulative, xs, ys = 0, [], []
        for i, n in enumerate(prog["per_bucket"]):
            cumulative += n
            xs.append((i + 1) * step)
            ys.append(cumulative)
        top.plot(xs, ys, linewidth=0.7, linestyle=":", label=f"partition {part} (5 s steps)")
    top.set_ylabel("molecules")
    bottom.plot(rt, rates, linewidth=0.8, label="new ids/s (1 s window)")
    bottom.set_ylabel("molecules/s")
    bottom.set_xlabel("seconds since the first consumer start")
    _draw_faults(result["faults"], top, bottom)
    top.legend(loc="upper left")
    bottom.legend(loc="upper left")
    top.set_title(
        f"chaos: {result['published']:,} molecules, lost {result['lost']}, "
        f"duplicates {result['duplicates']:,} (shaded: fault → restored; line: caught up)"
    )
    fig.savefig(path, dpi=110)


def _draw_faults(faults: list[dict[str, Any]], top: Any, bottom: Any) -> None:
    """Each fault shaded until restored, its catch-up marked, its pre-fault rate's bar."""
    colors = {"consumer_kill": "tab:red", "node_loss": "tab:orange", "broker_freeze": "tab:purple"}
    for f in faults:
        end = f["restored_t_s"] or f["t_s"]
        for ax in (top, bottom):
            ax.axvspan(f["t_s"], max(end, f["t_s"] + 0.3), color=colors[f["kind"]], alpha=0.25)
            if f["catch_up_s"] is not None:
                ax.axvline(f["t_s"] + f["catch_up_s"], color=colors[f["kind"]], linewidth=0.8)
        top.annotate(f["kind"], (f["t_s"], 0), rotation=90, fontsize=8, va="bottom")
        if f["pre_rate_per_s"]:
            bottom.hlines(
                CATCH_FRACTION * f["pre_rate_per_s"],
                f["t_s"],
                f["t_s"] + (f["catch_up_s"] or 0),
                colors="gray",
                linestyles=":",
            )
