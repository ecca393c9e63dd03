"""Memory at a large backlog: the consumer process's RSS while it works through it.

Run: ``.venv/bin/python -m bench.memory [--molecules 1000000]``. Prints a table, writes
``memory.json`` and ``memory.png`` (``--out``, default bench/results).

``--molecules`` small molecules (``C`` to ``C30``, distinct ids) are published first, from
this process: aiokafka, one ``send`` each, with molstream's producer settings (zstd, batches
of up to 1 MB, linger 5 ms). Then ``molstream consume`` runs as a process with the synthetic
model at 0 ms and two workers, its other settings at their defaults (``--max-in-flight``
2048, ``--batch-size`` 64 unless given here). Every ``--interval-s`` the bench reads:

- the RSS of the consumer process alone (psutil). The Ray workers, raylets and GCS are
  separate processes and not counted (their sum is in the JSON as ``ray_rss_mb``);
- the progress: the group's committed offsets on the broker, summed over the partitions,
  against the records published (the ``molstream_offsets_committed_total`` metric does not
  count a partition's first commit, so it cannot tell the progress);
- the machine's load (:class:`~bench.monitor.LoadMonitor`).

It stops when every record is committed, then sends SIGTERM. Reported: the peak RSS, the RSS
at 10/50/90% progress and the ratio 90%/10% (targets: peak <= 300 MB, 10% -> 90% within 15%).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import runner
from bench.harness import consumer_process, create_topics, terminate
from bench.monitor import process_monitor
from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from schemas import MOLECULE_CODEC
from schemas.kafka import ProducerSettings
from tests.harness import committed, consume_command, each_synthetic_molecule, publish_raw

TOPIC, GROUP = "molecules", "memory"
PROGRESS_MARKS = (0.1, 0.5, 0.9)
PEAK_TARGET_MB, DRIFT_TARGET = 300.0, 0.15


async def _run(
    args: argparse.Namespace, broker: EmbeddedBroker, cluster: LocalCluster, workdir: Path
) -> dict[str, Any]:
    bootstrap = broker.bootstrap_servers
    await create_topics(bootstrap, [TOPIC, "predictions"])
    kwargs = ProducerSettings(bootstrap_servers=bootstrap).producer_kwargs()
    records: Iterator[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = (
        (m.id.encode(), MOLECULE_CODEC.encode(m), [])
        for m in each_synthetic_molecule(args.molecules)
    )
    sent = await publish_raw(bootstrap, TOPIC, records, producer_kwargs=kwargs)
    print(f"published {sent.records:,} in {sent.seconds:.0f} s", flush=True)
    argv = consume_command(
        bootstrap,
        cluster.address,
        *("--model", "synthetic", "--model-option", "per_molecule_ms=0"),
        *("--min-workers", "2", "--max-workers", "2", "--group-id", GROUP),
        *("--batch-size", str(args.batch_size), "--max-in-flight", str(args.max_in_flight)),
    )
    log_path = workdir / "consumer.log"
    rows: list[dict[str, float]] = []
    async with consumer_process(argv, log_path) as consumer:
        monitor = process_monitor({"consumer": consumer.pid, "broker": broker.pid})
        started = time.monotonic()
        while consumer.returncode is None:
            await asyncio.sleep(args.interval_s)
            row = await asyncio.to_thread(monitor.sample)
            offsets = await committed(bootstrap, GROUP, sent.ends)
            row["committed"] = sum(offset or 0 for offset in offsets.values())
            row["progress"] = row["committed"] / sent.records
            rows.append(row)
            if offsets == sent.ends:
                break
            if time.monotonic() - started > args.timeout_s:
                raise TimeoutError(f"{row['committed']:.0f}/{sent.records} committed")
        if consumer.returncode is not None:
            raise RuntimeError(f"the consumer exited {consumer.returncode}: see {log_path}")
        code = await terminate(consumer)
    return {
        "molecules": sent.records,
        "publish_s": sent.seconds,
        "exit_code": code,
        "log": str(log_path),
        "samples": rows,
        "machine_load": monitor.summary(),
    }


def analyse(run: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS, RSS at the progress marks (the first sample at or past each), drift."""
    samples = run["samples"]
    marked = {f"{m:.0%}": next(s for s in samples if s["progress"] >= m) for m in PROGRESS_MARKS}
    at = {mark: s["consumer_rss_mb"] for mark, s in marked.items()}
    peak = max(s["consumer_rss_mb"] for s in samples)
    ratio = at["90%"] / at["10%"]
    done = next(s for s in samples if s["progress"] >= 1)
    low, high = marked["10%"], marked["90%"]
    span_s = high["t_s"] - low["t_s"]
    rate = (high["committed"] - low["committed"]) / span_s if span_s > 0 else float("nan")
    return {
        "peak_rss_mb": peak,
        "rss_mb_at_progress": at,
        "ratio_90_over_10": ratio,
        "committed_per_s": rate,
        "done_s": done["t_s"],
        "acceptance": {
            f"peak <= {PEAK_TARGET_MB:g} MB": peak <= PEAK_TARGET_MB,
            f"10% -> 90% within {DRIFT_TARGET:.0%}": abs(ratio - 1) <= DRIFT_TARGET,
        },
    }


def plot(result: dict[str, Any], path: Path) -> None:
    """RSS over time, progress on the second axis, the marks and the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    t = [s["t_s"] for s in samples]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(t, [s["consumer_rss_mb"] for s in samples], color="C0", label="consumer RSS")
    ax.axhline(PEAK_TARGET_MB, color="red", linestyle=":", label=f"{PEAK_TARGET_MB:g} MB target")
    for mark, rss in result["rss_mb_at_progress"].items():
        s = next(s for s in samples if s["progress"] >= float(mark[:-1]) / 100)
        ax.plot([s["t_s"]], [rss], "o", color="C0")
        ax.annotate(
            f"{mark}: {rss:.0f} MB",
            (s["t_s"], rss),
            xytext=(0, -14),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_ylim(0, max(PEAK_TARGET_MB, result["peak_rss_mb"]) * 1.15)
    ax.set_xlabel("seconds since the consumer started")
    ax.set_ylabel("RSS of the consumer process (MB)")
    right = ax.twinx()
    right.plot(t, [100 * s["progress"] for s in samples], color="C1", label="committed")
    right.set_ylabel("records committed (%)")
    right.set_ylim(0, 105)
    lines = ax.get_legend_handles_labels(), right.get_legend_handles_labels()
    ax.legend(lines[0][0] + lines[1][0], lines[0][1] + lines[1][1], loc="lower right")
    ax.set_title(
        f"{result['molecules']:,} molecules of backlog, synthetic model at 0 ms, 2 workers: "
        f"peak {result['peak_rss_mb']:.0f} MB, 90%/10% {result['ratio_90_over_10']:.2f}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    """Publish the backlog, run the consumer through it; print, write JSON and PNG."""
    parser = runner.parser(__doc__)
    parser.add_argument("--molecules", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-in-flight", type=int, default=2048)
    parser.add_argument("--interval-s", type=float, default=2.0)
    parser.add_argument("--timeout-s", type=float, default=1800.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="molstream-memory-"))
    with runner.broker_and_cluster(spot_nodes=2) as (broker, cluster):
        run = asyncio.run(_run(args, broker, cluster, workdir))
    result = {
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        **analyse(run),
        **run,
    }
    runner.write_json(args.out / "memory.json", result)
    plot(result, args.out / "memory.png")
    table = Table("measurement", "value", title=f"memory, {result['molecules']:,} molecules")
    table.add_row("peak RSS of the consumer process", f"{result['peak_rss_mb']:.0f} MB")
    for mark, rss in result["rss_mb_at_progress"].items():
        table.add_row(f"RSS at {mark} committed", f"{rss:.0f} MB")
    table.add_row("ratio 90% / 10%", f"{result['ratio_90_over_10']:.3f}")
    table.add_row("committed per s (10% to 90% samples)", f"{result['committed_per_s']:,.0f}")
    load = result["machine_load"]
    table.add_row(
        "cores: machine / consumer / ray / other (mean)",
        " / ".join(
            f"{load[f'{k}_cores']['mean']:.2f}" for k in ("machine", "consumer", "ray", "other")
        ),
    )
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(table)
    for check, met in result["acceptance"].items():
        console.print(f"{'met' if met else 'NOT met'}: {check}")
    console.print(f"the consumer's log: {result['log']}; wrote {args.out}/memory.{{json,png}}")


if __name__ == "__main__":
    main()
