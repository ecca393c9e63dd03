"""Latency under live load: molecules produced at a set rate into a running pipeline.

The last step of ``bench.throughput`` (it measures the capacity the rates are fractions of and
owns the running processor); this module holds the windows, the read-back and the CDF plot.

One window at rate R for S seconds:

- ``molstream produce --rate R`` runs as a process on a .smi file of R x S NCI molecules
  (distinct ids), into the processor's input topic;
- each prediction's latency is its acknowledgement by the broker, as the consumer's sink sees
  it (the :class:`~bench.harness.Timing` hook), minus its input record's Kafka timestamp
  (CreateTime: when the producer process sent it). Tansu ignores
  ``message.timestamp.type=LogAppendTime``, so a prediction record's own timestamp is the
  consumer's send time, not the broker's: the acknowledgement is the later and truer end;
- cross-check, read back after the windows: the prediction record's timestamp minus its input
  record's (joined on ``source_partition``/``source_offset``), and the rate the producer
  achieved (input timestamps, first to last);
- the floor: the batch wait plus the inference of the batch formed, i.e. the mean batch size
  at that load x the model's raw time per molecule;
- the machine's load (:class:`~bench.monitor.LoadMonitor`, every second): this process (the
  consumer), the producer, the broker, the Ray processes and everything else.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness import Timing, nci_repeated
from bench.monitor import process_monitor
from schemas import PREDICTION_CODEC
from tests.harness import read_raw, wait_until

PERCENTILES = [*range(0, 99, 2), 99, 99.9, 100]
"""Stored per window: enough to draw the CDF again."""


def stats_ms(values_s: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean of ``values_s`` in milliseconds."""
    ms = np.asarray(values_s, dtype=float) * 1000
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "count": len(ms),
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "max_ms": float(ms.max()),
        "mean_ms": float(ms.mean()),
    }


@dataclass(frozen=True)
class Setup:
    """What every window shares: the running processor's topics and hook, the capacity the
    loads are fractions of, and the floor's parts."""

    bootstrap: str
    broker_pid: int | None
    input_topic: str
    output_topic: str
    timing: Timing
    capacity_per_s: float
    seconds: float
    batch_wait_ms: float
    per_molecule_s: float
    """The model's raw time per molecule."""
    workdir: Path
    model: str = "reference model, 2 workers"
    """What computes, as the plot's title names it."""


async def _produce(setup: Setup, rate_per_s: float, count: int, tag: str) -> tuple[float, Any]:
    """Run ``molstream produce --rate`` on ``count`` molecules: its run time and the load
    summary of the machine meanwhile."""
    smi = setup.workdir / f"{tag}.smi"
    smi.write_text("".join(f"{m.smiles} {m.id}\n" for m in nci_repeated(count, f"{tag}-")))
    argv = [sys.executable, "-m", "consumer.cli", "produce", str(smi)]
    argv += ["--topic", setup.input_topic, "--rate", f"{rate_per_s:.3f}"]
    argv += ["--bootstrap-servers", setup.bootstrap]
    log_path = setup.workdir / f"{tag}.produce.log"
    with log_path.open("wb") as log:
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=subprocess.STDOUT)
        named = {"consumer": os.getpid(), "producer": proc.pid, "broker": setup.broker_pid}
        try:
            with process_monitor(named) as monitor:
                code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    if code != 0:
        raise RuntimeError(f"molstream produce exited {code}: {log_path.read_text()[-2000:]}")
    return time.perf_counter() - started, monitor.summary()


async def window(setup: Setup, load: float) -> dict[str, Any]:
    """One window at ``load`` x the capacity: its latencies, floor and the machine's load."""
    timing = setup.timing
    rate = load * setup.capacity_per_s
    count = max(1, round(rate * setup.seconds))
    tag = f"load{round(load * 100)}"
    timing.reset()
    produce_s, machine = await _produce(setup, rate, count, tag)
    await wait_until(lambda: timing.count >= count, 120, f"{count} predictions of {tag}")
    mean_batch = float(np.mean(timing.batch_sizes))
    mean_inference_ms = float(np.mean(timing.inference_s)) * 1000
    floor_ms = setup.batch_wait_ms + mean_batch * setup.per_molecule_s * 1000
    latency = stats_ms(timing.latencies_s)
    cdf = np.percentile(timing.latencies_s, PERCENTILES) * 1000
    return {
        "tag": tag,
        "load": load,
        "rate_per_s": rate,
        "molecules": count,
        "produce_process_s": produce_s,
        "latency": latency,
        "cdf_ms": {str(q): float(v) for q, v in zip(PERCENTILES, cdf, strict=True)},
        "batches": len(timing.batch_sizes),
        "mean_batch_size": mean_batch,
        "mean_inference_ms": mean_inference_ms,
        "floor_ms": floor_ms,
        "floor_with_measured_inference_ms": setup.batch_wait_ms + mean_inference_ms,
        "p99_over_floor": latency["p99_ms"] / floor_ms,
        "p99_over_floor_with_measured_inference": latency["p99_ms"]
        / (setup.batch_wait_ms + mean_inference_ms),
        "machine_load": machine,
        "machine_saturated": machine["saturated_share"] > 0.2,
    }


async def readback(setup: Setup, tags: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per window tag: prediction record timestamp minus input record timestamp, and the
    rate the producer achieved (its input timestamps, first to last)."""
    inputs: dict[tuple[int, int], int] = {
        (r.partition, r.offset): r.timestamp  # type: ignore[attr-defined]
        for r in await read_raw(setup.bootstrap, setup.input_topic)
    }
    delays: dict[str, list[float]] = {t: [] for t in tags}
    sent: dict[str, list[int]] = {t: [] for t in tags}
    for record in await read_raw(setup.bootstrap, setup.output_topic):
        p = PREDICTION_CODEC.decode(record.value)  # type: ignore[attr-defined]
        tag = p.id.split("-", 1)[0]
        if tag in delays:
            ts = inputs[(p.source_partition, p.source_offset)]
            delays[tag].append((record.timestamp - ts) / 1000)  # type: ignore[attr-defined]
            sent[tag].append(ts)
    out = {}
    for tag in tags:
        span_s = (max(sent[tag]) - min(sent[tag])) / 1000
        achieved = (len(sent[tag]) - 1) / span_s if span_s > 0 else float("nan")
        out[tag] = {**stats_ms(delays[tag]), "achieved_rate_per_s": achieved}
    return out


async def run(setup: Setup, loads: Sequence[float]) -> dict[str, Any]:
    """Every window in turn into the running processor, then the read-back."""
    windows = [await window(setup, load) for load in loads]
    back = await readback(setup, [w["tag"] for w in windows])
    for w in windows:
        w["readback"] = back[w["tag"]]
    return {
        "capacity_molecules_per_s": setup.capacity_per_s,
        "seconds_per_window": setup.seconds,
        "batch_wait_ms": setup.batch_wait_ms,
        "per_molecule_ms": setup.per_molecule_s * 1000,
        "model": setup.model,
        "windows": windows,
    }


def plot_cdf(result: dict[str, Any], path: Path) -> None:
    """The latency CDF of every window, its floor marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, w in enumerate(result["windows"]):
        color = f"C{i}"
        cdf = w["cdf_ms"]
        ax.plot(
            list(cdf.values()),
            [float(q) / 100 for q in cdf],
            color=color,
            label=f"{w['load']:.0%} of capacity ({w['rate_per_s']:.0f}/s): "
            f"p99 {w['latency']['p99_ms']:.0f} ms = {w['p99_over_floor']:.2f}x floor"
            + (" (machine saturated)" if w["machine_saturated"] else ""),
        )
        ax.axvline(w["floor_ms"], color=color, linestyle="--", linewidth=1)
        ax.annotate(
            f"floor {w['floor_ms']:.0f} ms",
            (w["floor_ms"], 0.05 + 0.1 * i),
            color=color,
            xytext=(4, 0),
            textcoords="offset points",
        )
    ax.set_xscale("log")
    ax.set_xlabel("input record timestamp -> prediction acknowledged (ms)")
    ax.set_ylabel("fraction of predictions")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(
        f"Latency, {result.get('model', 'reference model, 2 workers')}, capacity "
        f"{result['capacity_molecules_per_s']:.0f}/s, batch wait {result['batch_wait_ms']:g} ms"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
