"""``molstream produce`` and ``molstream results``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from producer.publisher import Publisher
from producer.readers import Format, ReadError, Skipped, detect_format, read_molecules
from producer.results import prediction_json, read_predictions
from producer.settings import ProduceSettings, ResultsSettings
from schemas import Molecule, Prediction, Status
from schemas.cli_options import build_settings, with_settings_options
from schemas.errors import RegistryAuthError, RegistryError
from schemas.kafka_refusals import KAFKA_FAILURES, exit_on_kafka_failure

# soft_wrap: a message to a pipe or a log is never broken at 80 columns mid-sentence.
_err = Console(stderr=True, soft_wrap=True)


@with_settings_options(ProduceSettings)
def produce(
    files: Annotated[list[Path], typer.Argument(help="Molecule files: .smi, .csv or .sdf.")],
    topic: Annotated[
        str, typer.Option(envvar="MOLSTREAM_TOPIC", help="Topic to publish to.")
    ] = "molecules",
    format: Annotated[
        Format, typer.Option("--format", help="File format; auto: from the file suffix.")
    ] = "auto",
    rate: Annotated[
        float | None,
        typer.Option(min=0.001, help="Molecules per second (default: as fast as acked)."),
    ] = None,
    smiles_column: Annotated[str, typer.Option(help="CSV column with the SMILES.")] = "smiles",
    id_column: Annotated[str, typer.Option(help="CSV column with the molecule id.")] = "id",
    *,
    given: dict[str, Any],
) -> None:
    """Publish molecules from files to the input topic, keyed by id, acks=all."""
    kafka = build_settings(ProduceSettings, given)
    for path in files:  # fail on a missing file or unknown format before connecting
        try:
            detect_format(path, format)
        except ReadError as exc:
            _err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        if not path.is_file():
            _err.print(f"[red]error:[/red] {path}: no such file")
            raise typer.Exit(2)
    skipped: list[Skipped] = []

    def molecules() -> Iterator[Molecule]:
        for path in files:
            yield from read_molecules(
                path,
                format,
                smiles_column=smiles_column,
                id_column=id_column,
                skipped=skipped,
            )

    async def main() -> int:
        columns = (TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=_err, transient=False) as progress:
            task = progress.add_task("publish", total=None)
            publisher = Publisher(kafka, topic=topic, rate_per_s=rate, registry=kafka)
            async with publisher:
                return await publisher.publish_all(
                    molecules(), on_sent=lambda n: progress.update(task, completed=n)
                )

    try:
        count = asyncio.run(main())
    except ReadError as exc:
        _err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    except KAFKA_FAILURES as exc:
        exit_on_kafka_failure(kafka, exc)
    except RegistryError as exc:
        _registry_failed(exc)
    for skip in skipped:
        _err.print(f"[yellow]skipped[/yellow] {skip.path}:{skip.position}: {skip.reason}")
    _err.print(f"published {count} molecules to {topic!r}, {len(skipped)} skipped")


@with_settings_options(ResultsSettings)
def results(
    topic: Annotated[
        str, typer.Option(envvar="MOLSTREAM_OUTPUT_TOPIC", help="Topic to read predictions from.")
    ] = "predictions",
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning/--from-end", help="Start at the oldest record.")
    ] = True,
    max: Annotated[int | None, typer.Option("--max", min=1, help="Stop after this many.")] = None,
    timeout_s: Annotated[
        float, typer.Option(min=0, help="Stop after this long without a new prediction.")
    ] = 10.0,
    status: Annotated[
        list[Status] | None, typer.Option(help="Only predictions of this status (repeatable).")
    ] = None,
    id: Annotated[
        list[str] | None,
        typer.Option("--id", help="Only predictions of this molecule id (repeatable)."),
    ] = None,
    *,
    given: dict[str, Any],
) -> None:
    """Print predictions as JSON lines, every field; undecodable records go to stderr."""
    kafka = build_settings(ResultsSettings, given)
    statuses, ids = set(status or ()), set(id or ())

    def wanted(prediction: Prediction) -> bool:
        return (not statuses or prediction.status in statuses) and (not ids or prediction.id in ids)

    async def main() -> None:
        printed = 0
        async for prediction in read_predictions(
            kafka,
            topic=topic,
            from_beginning=from_beginning,
            max_count=None if statuses or ids else max,  # --max counts what is printed
            timeout_s=timeout_s,
            registry=kafka,
        ):
            if isinstance(prediction, Exception):
                _err.print(f"[yellow]undecodable record:[/yellow] {prediction}")
            elif wanted(prediction):
                sys.stdout.write(prediction_json(prediction) + "\n")
                printed += 1
                if max is not None and printed >= max:
                    return

    try:
        asyncio.run(main())
    except RegistryError as exc:
        _registry_failed(exc)
    except KAFKA_FAILURES as exc:
        exit_on_kafka_failure(kafka, exc)


def _registry_failed(exc: RegistryError) -> NoReturn:
    """One line; status 2 when the registry refused molstream's credentials (the settings
    are wrong, as for a Kafka refusal), 1 for any other registry failure."""
    _err.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(2 if isinstance(exc, RegistryAuthError) else 1) from None
