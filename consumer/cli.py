"""The ``molstream`` command: consume, broker, demo, simulate, plus produce and results.

``produce`` and ``results`` belong to the producer package and arrive through the
``molstream.commands`` entry point group, so the consumer never imports the producer.
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib.metadata import entry_points
from typing import Annotated, Any

import typer

from consumer.logs import configure_logging
from consumer.settings import ConsumerSettings
from schemas.cli_options import build_settings, with_settings_options

app = typer.Typer(
    name="molstream",
    help="Streaming molecular inference: Kafka in, a pool of Ray model workers, Kafka out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.command()
@with_settings_options(ConsumerSettings)
def consume(*, given: dict[str, Any]) -> None:
    """Consume molecules, predict on a Ray worker pool, produce predictions.

    Runs until SIGTERM or SIGINT, then shuts down gracefully (drain, flush, commit, leave).
    """
    from consumer.errors import MolstreamError
    from consumer.metrics import serve_metrics
    from consumer.processor import run_until_signal
    from schemas.errors import RegistryError

    settings = build_settings(ConsumerSettings, given)
    configure_logging(settings.log_format, settings.log_level)
    hooks = serve_metrics(settings.metrics_host, settings.metrics_port)
    try:
        asyncio.run(run_until_signal(settings, hooks))
    except (MolstreamError, RegistryError) as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None


@app.command()
def broker(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 9092,
) -> None:
    """Run the embedded Kafka-compatible development broker (Tansu, memory storage) in the
    foreground on 127.0.0.1. Everything is lost when it stops."""
    from consumer.devbroker import EmbeddedBroker

    with EmbeddedBroker(port=port) as dev:
        typer.echo(f"broker listening on {dev.bootstrap_servers} (Ctrl-C stops it)")
        with contextlib.suppress(KeyboardInterrupt):
            dev.wait()


@app.command()
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
    from consumer.demo import run_demo

    configure_logging("console", "warning")
    summary = asyncio.run(
        run_demo(nodes=nodes, node_interval_s=node_interval_s, molecules=molecules, model=model)
    )
    if not summary.complete:
        raise typer.Exit(1)


def _register_simulate() -> None:
    from bench.simulation import simulate_command

    app.command(
        "simulate",
        help="The seed's worker-reuse simulation: CSV, JSON and PNG of reuse vs no reuse.",
    )(simulate_command)


def _register_plugins() -> None:
    for ep in entry_points(group="molstream.commands"):
        app.command(ep.name)(ep.load())


_register_simulate()
_register_plugins()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
