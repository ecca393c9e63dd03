"""``molstream broker`` and ``molstream demo``, registered through ``molstream.commands``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from types import FrameType
from typing import Annotated

import typer


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def broker(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 9092,
) -> None:
    """Run the embedded Kafka-compatible development broker (Tansu, memory storage) in the
    foreground on 127.0.0.1. Everything is lost when it stops."""
    from consumer.dev.broker import EmbeddedBroker
    from consumer.errors import MolstreamError

    # A supervisor or a closed terminal must stop Tansu as Ctrl-C does; otherwise the broker
    # outlives this process and keeps its port.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    try:
        with contextlib.suppress(KeyboardInterrupt), EmbeddedBroker(port=port) as dev:
            typer.echo(f"broker listening on {dev.bootstrap_servers} (Ctrl-C stops it)")
            dev.wait()
    except MolstreamError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None


def demo(
    nodes: Annotated[int, typer.Option(min=1, help="Simulated one-CPU Spot nodes.")] = 3,
    node_interval_s: Annotated[
        float, typer.Option(min=0, help="Seconds between Spot node arrivals.")
    ] = 4.0,
    molecules: Annotated[
        int, typer.Option(min=1, max=4999, help="How many NCI molecules to publish.")
    ] = 4999,
    model: Annotated[str, typer.Option(help="Model to serve.")] = "reference",
) -> None:
    """Everything embedded: broker, a local Ray cluster whose Spot nodes arrive a few seconds
    apart, the 4,999 NCI molecules that ship with RDKit (first_5K.smi); prints a summary and
    exits."""
    from consumer.dev.demo import run_demo
    from consumer.ops.logs import configure_logging

    configure_logging("console", "warning")
    summary = asyncio.run(
        run_demo(nodes=nodes, node_interval_s=node_interval_s, molecules=molecules, model=model)
    )
    if not summary.complete:
        raise typer.Exit(1)
