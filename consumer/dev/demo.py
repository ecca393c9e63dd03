"""``molstream demo``: the whole path on one machine, with Spot nodes arriving one by one."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import SPOT_RESOURCE, LocalCluster
from consumer.hooks import Hooks
from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings
from schemas import Status


def nci_molecules_path() -> Path:
    """The NCI molecules that ship with RDKit (4,999 in first_5K.smi)."""
    from rdkit import RDConfig

    return Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"


@dataclass
class DemoCounts(Hooks):
    """Counts what the processor reports, for the live display and the summary."""

    started: float = field(default_factory=time.monotonic)
    by_status: Counter[str] = field(default_factory=Counter)
    by_worker: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    first_prediction_at: float | None = None

    def prediction(self, status: Status, end_to_end_s: float | None) -> None:
        if self.first_prediction_at is None:
            self.first_prediction_at = time.monotonic()
        self.by_status[status.value] += 1

    def batch(self, worker: str, size: int, inference_s: float) -> None:
        self.by_worker[worker] += size

    def dead_letter(self, stage: str) -> None:
        self.dead_letters += 1

    @property
    def done(self) -> int:
        """Molecules with a final outcome."""
        return sum(self.by_status.values()) + self.dead_letters


@dataclass(frozen=True)
class DemoSummary:
    """What the demo prints at the end."""

    published: int
    counts: DemoCounts
    elapsed_s: float
    complete: bool


def _render(counts: DemoCounts, total: int, nodes: int, processor: StreamProcessor) -> Table:
    table = Table(title="molstream demo", show_header=False)
    elapsed = time.monotonic() - counts.started
    table.add_row("predictions", f"{counts.done} / {total}")
    table.add_row("molecules/s", f"{counts.done / elapsed:.0f}" if elapsed else "-")
    table.add_row("spot nodes", str(nodes))
    table.add_row(
        "workers", ", ".join(f"{k}={v}" for k, v in sorted(processor.pool.counts().items()))
    )
    table.add_row("per worker", ", ".join(f"{k}: {v}" for k, v in sorted(counts.by_worker.items())))
    return table


async def run_demo(
    *, nodes: int, node_interval_s: float, molecules: int, model: str
) -> DemoSummary:
    """Start broker and cluster, publish, consume until every molecule has an outcome."""
    console = Console()
    source = nci_molecules_path()
    lines = [ln for ln in source.read_text().splitlines() if ln.strip()][:molecules]
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedBroker() as broker,
        LocalCluster() as cluster,
    ):
        data = Path(tmp) / "molecules.smi"
        data.write_text("\n".join(lines) + "\n")
        console.print(f"broker on {broker.bootstrap_servers}, Ray head on {cluster.address}")
        settings = _demo_settings(broker.bootstrap_servers, cluster.address, nodes, model)
        counts = DemoCounts()
        publish = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "consumer.cli", "produce", str(data)),
            *("--bootstrap-servers", broker.bootstrap_servers, "--topic", settings.input_topic),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        arrived = 0
        async with StreamProcessor(settings, hooks=counts) as processor:
            console.print(f"publishing {len(lines)} NCI molecules; {nodes} Spot nodes to come")
            next_node_at = time.monotonic()
            with Live(_render(counts, len(lines), arrived, processor), console=console) as live:
                while counts.done < len(lines):
                    if arrived < nodes and time.monotonic() >= next_node_at:
                        # Ray starts node processes from the main thread only; this blocks
                        # the loop for about a second, which in-flight batches survive.
                        cluster.add_spot_node(wait=False)
                        arrived += 1
                        next_node_at = time.monotonic() + node_interval_s
                    if publish.returncode not in (None, 0):
                        assert publish.stderr is not None
                        error = (await publish.stderr.read()).decode(errors="replace")
                        console.print(f"[red]publishing failed (exit {publish.returncode})[/red]")
                        console.print(error[-2000:])
                        break
                    live.update(_render(counts, len(lines), arrived, processor))
                    await asyncio.sleep(0.2)
                live.update(_render(counts, len(lines), arrived, processor))
            console.print()
        await publish.wait()
    elapsed = time.monotonic() - counts.started
    summary = DemoSummary(len(lines), counts, elapsed, counts.done == len(lines))
    _print_summary(console, summary)
    return summary


def _demo_settings(bootstrap: str, ray_address: str, nodes: int, model: str) -> ConsumerSettings:
    """One worker per simulated Spot node, from the start."""
    return ConsumerSettings(
        bootstrap_servers=bootstrap,
        ray_address=ray_address,
        worker_resources={SPOT_RESOURCE: 1},
        min_workers=nodes,
        max_workers=nodes,
        model=model,
        group_id="molstream-demo",
    )


def _print_summary(console: Console, summary: DemoSummary) -> None:
    counts = summary.counts
    first = (
        f"{counts.first_prediction_at - counts.started:.2f} s"
        if counts.first_prediction_at
        else "none"
    )
    table = Table(title="summary", show_header=False)
    table.add_row("molecules", str(summary.published))
    table.add_row("predictions", str(sum(counts.by_status.values())))
    table.add_row("molecules/s", f"{counts.done / summary.elapsed_s:.1f}")
    table.add_row("time to first prediction", first)
    table.add_row("invalid (INVALID_INPUT)", str(counts.by_status[Status.INVALID_INPUT.value]))
    table.add_row("failed", str(counts.by_status[Status.FAILED.value]))
    table.add_row("dead letters", str(counts.dead_letters))
    for worker, n in sorted(counts.by_worker.items()):
        table.add_row(f"molecules on {worker}", str(n))
    console.print(table)
    console.print("complete" if summary.complete else "[red]incomplete[/red]")
