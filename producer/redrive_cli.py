"""``molstream redrive``: send dead letters back to the topic they came from."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from producer.redrive import STAGES, Selection, Verdict
from producer.redriver import RedriveRun, Summary, redrive
from producer.settings import RedriveSettings
from schemas.cli_options import build_settings, with_settings_options
from schemas.kafka_refusals import KAFKA_FAILURES, exit_on_kafka_failure

_err = Console(stderr=True, soft_wrap=True)
_out = Console(soft_wrap=True)


def _epoch_ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _pattern(text: str | None, option: str) -> re.Pattern[str] | None:
    try:
        return None if text is None else re.compile(text)
    except re.error as exc:
        raise typer.BadParameter(f"not a regular expression: {exc}", param_hint=option) from None


@with_settings_options(RedriveSettings)
def redrive_command(
    dlq_topic: Annotated[
        str, typer.Option(envvar="MOLSTREAM_DLQ_TOPIC", help="Dead-letter topic to read.")
    ] = "molecules.dlq",
    topic: Annotated[
        str | None,
        typer.Option(help="Send every chosen letter here (default: the topic it came from)."),
    ] = None,
    group_id: Annotated[
        str,
        typer.Option(help="Consumer group of the redrive: what it committed is not read again."),
    ] = "molstream-redrive",
    stage: Annotated[
        list[str] | None, typer.Option(help=f"Only this stage (repeatable): {', '.join(STAGES)}.")
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Only letters whose error message matches this regex.")
    ] = None,
    error_class: Annotated[
        str | None, typer.Option(help="Only letters whose error class matches this regex, whole.")
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Only letters written at or after this time.")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(help="Only letters written at or before this time.")
    ] = None,
    partition: Annotated[
        list[int] | None, typer.Option(help="Only records of this input partition (repeatable).")
    ] = None,
    from_offset: Annotated[
        int | None, typer.Option(help="Only records at or after this input offset.")
    ] = None,
    to_offset: Annotated[
        int | None, typer.Option(help="Only records at or before this input offset.")
    ] = None,
    max_redrives: Annotated[
        int, typer.Option(min=1, help="A record redriven this often is not sent again.")
    ] = 3,
    dry_run: Annotated[
        bool, typer.Option(help="Print what would go; publish and commit nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    timeout_s: Annotated[
        float, typer.Option(min=0.5, help="Stop after this long without a dead letter.")
    ] = 10.0,
    *,
    given: dict[str, Any],
) -> None:
    """Send dead letters back to the topic they came from, once their cause is fixed."""
    unknown = sorted(set(stage or ()) - set(STAGES))
    if unknown:
        raise typer.BadParameter(f"{unknown}: not one of {', '.join(STAGES)}", param_hint="--stage")
    kafka = build_settings(RedriveSettings, given)
    chosen = Selection(
        stages=frozenset(stage or ()),
        reason=_pattern(reason, "--reason"),
        error_class=_pattern(error_class, "--error-class"),
        since_ms=_epoch_ms(since),
        until_ms=_epoch_ms(until),
        partitions=frozenset(partition or ()),
        from_offset=from_offset,
        to_offset=to_offset,
        max_redrives=max_redrives,
    )
    run = RedriveRun(dlq_topic, group_id, chosen, topic, dry_run, timeout_s)
    try:
        summary = asyncio.run(_run(kafka, run))
    except KAFKA_FAILURES as exc:
        exit_on_kafka_failure(kafka, exc)
    if as_json:
        sys.stdout.write(json.dumps(summary.as_json()) + "\n")
    else:
        _out.print(_table(summary, dry_run))


async def _run(kafka: RedriveSettings, run: RedriveRun) -> Summary:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.completed} dead letters read"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_err, transient=True, disable=not _err.is_terminal) as bar:
        task = bar.add_task("redrive", total=None)

        def seen(judged: Verdict, record: Any) -> None:
            bar.advance(task)
            if run.dry_run and judged is Verdict.REDRIVEN:
                where = f"{record.topic}-{record.partition}@{record.offset}"
                _err.print(f"would redrive {where}")

        return await redrive(kafka, run, on_record=seen)


def _table(summary: Summary, dry_run: bool) -> Table:
    table = Table(title="dry run: nothing sent" if dry_run else "redrive")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for v in Verdict:
        table.add_row(v.value.replace("_", " "), str(summary.verdicts[v.value]))
    for (stage, cls), n in sorted(summary.redriven_by.items()):
        table.add_row(f"  redriven: stage {stage}, {cls}", str(n))
    return table
