"""The ``molstream`` command: ``consume`` here, every other command from its own package.

``produce``, ``results``, ``simulate``, ``broker`` and ``demo`` arrive through the
``molstream.commands`` entry point group, so the service never imports the producer, the
benchmarks or the development tools, and each is imported only when it runs: ``consume``
starts without matplotlib, numpy or the broker binary.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._click import Command, Context  # typer 0.29 vendors click: these are its types
from typer.core import TyperCommand, TyperGroup

from consumer.ops.logs import configure_logging
from consumer.settings import ConsumerSettings
from schemas.cli_options import TYPER_OPTIONS, build_settings, with_settings_options

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

COMMANDS_GROUP = "molstream.commands"


@cache
def _entry_points() -> dict[str, EntryPoint]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=COMMANDS_GROUP)}


def _unavailable(name: str, exc: ImportError) -> Command:
    """A stand-in for a command whose optional dependencies are not installed."""

    def explain() -> None:
        typer.secho(
            f"error: molstream {name} needs an optional dependency ({exc}); "
            "install it with: pip install 'molstream[dev]'",
            err=True,
            fg="red",
        )
        raise typer.Exit(2)

    return TyperCommand(
        name,
        callback=explain,
        help="(not installed: needs molstream[dev])",
        # Whatever the user passes, the answer is the same: what to install.
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


def _load(ep: EntryPoint) -> Command:
    try:
        function = ep.load()
    except ImportError as exc:
        return _unavailable(ep.name, exc)
    single = typer.Typer(add_completion=False, **TYPER_OPTIONS)
    single.command(ep.name)(function)
    return typer.main.get_command(single)


class _Commands(TyperGroup):
    """The command group: commands of other packages are loaded when named (or listed)."""

    def list_commands(self, ctx: Context) -> list[str]:
        own = super().list_commands(ctx)
        return [*own, *sorted(set(_entry_points()) - set(own))]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in _entry_points():
            command = _load(_entry_points()[cmd_name])
        return command


app = typer.Typer(name="molstream", cls=_Commands, no_args_is_help=True, **TYPER_OPTIONS)


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("molstream")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"molstream {_installed_version()}")
        raise typer.Exit()


@app.callback()
def _molstream(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Streaming molecular inference: Kafka in, a pool of Ray model workers, Kafka out."""


@app.command()
@with_settings_options(ConsumerSettings)
def consume(*, given: dict[str, Any]) -> None:
    """Consume molecules, predict on a Ray worker pool, produce predictions.

    Runs until SIGTERM or SIGINT, then shuts down gracefully (drain, flush, commit, leave).
    """
    import asyncio

    from consumer.errors import MolstreamError
    from consumer.ops.metrics import PrometheusHooks
    from consumer.runner import run_until_signal
    from schemas.errors import RegistryError
    from schemas.kafka_refusals import refusal_message

    settings = build_settings(ConsumerSettings, given)
    configure_logging(settings.log_format, settings.log_level)
    hooks = PrometheusHooks()
    try:
        asyncio.run(run_until_signal(settings, hooks, metrics_registry=hooks.registry))
    except (MolstreamError, RegistryError) as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    except Exception as exc:  # a refused login or right: the settings, not an outage
        refused = refusal_message(settings, exc)
        if refused is None:
            raise
        typer.secho(f"error: {refused}", err=True, fg="red")
        raise typer.Exit(2) from None


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
