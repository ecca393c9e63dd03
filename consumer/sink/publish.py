"""The sink: computed batches are produced with their dead letters, acknowledged, then done.

A record is done only when everything it produced is acknowledged by the broker; a dead letter
that even the broker refuses leaves its offset pending (the lag grows, alerts fire) rather
than being dropped.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from aiokafka import TopicPartition

from consumer.hooks import Hooks
from consumer.reasons import DeadLetterStage
from consumer.sink.output import Output
from consumer.state.items import Computed, DeadLetter
from consumer.state.ledger import Ledger
from consumer.state.work_messages import Produced
from schemas import Status

log = structlog.get_logger(__name__)


class Sink:
    """Publishes computed batches through an :class:`~consumer.sink.output.Output`; marks them
    done."""

    def __init__(
        self,
        *,
        output: Output,
        ledger: Ledger,
        hooks: Hooks,
    ) -> None:
        self._output = output
        self._ledger = ledger
        self._hooks = hooks

    async def publish(self, computed: list[Computed]) -> None:
        """Produce a batch's predictions (one record batch per output partition) and its dead
        letters; returns when all are acknowledged, the batch's records done together."""
        produced: dict[int, list[Produced]] = {}
        letters: list[DeadLetter] = []
        for part in computed:
            for partition, records in part.result.produced.items():
                produced.setdefault(partition, []).extend(records)
            letters += _letters(part)
        if letters:
            await asyncio.gather(
                self._output.predictions(produced), self._output.dead_letters(letters)
            )
        else:  # the usual batch: no task of its own for nothing to send
            await self._output.predictions(produced)
        acked_s = time.time()
        statuses: list[Status] = []
        ages_s: list[float | None] = []
        for part in computed:
            for item, status in zip(part.items, part.result.statuses, strict=True):
                if status is not None:
                    statuses.append(status)
                    ts = item.timestamp_ms
                    ages_s.append(acked_s - ts / 1000 if ts > 0 else None)
        self._hooks.predicted(statuses, ages_s)
        for letter in letters:
            self._hooks.dead_letter(letter.stage)
        # Last: once done, nothing here may raise (the batch would be dead-lettered twice).
        self._ledger.done((i.tp, i.offset) for part in computed for i in part.items)

    async def dead_letter(self, letter: DeadLetter) -> None:
        """Send one dead letter; its record is done once acknowledged."""
        tp = TopicPartition(letter.topic, letter.partition)
        try:
            await self._output.dead_letters([letter])
        except Exception:
            log.exception(
                "dead letter refused: offset left uncommitted",
                topic=letter.topic,
                partition=letter.partition,
                offset=letter.offset,
            )
            self._ledger.leave([(tp, letter.offset)])
            return
        self._hooks.dead_letter(letter.stage)
        self._ledger.done([(tp, letter.offset)])


def _letters(part: Computed) -> list[DeadLetter]:
    """The dead letters of a computed part: the values that did not decode and, when no
    worker computed it, every other record too (beside its FAILED prediction)."""
    rejected = part.result.rejected
    letters = [part.items[i].letter(DeadLetterStage.DECODE, exc) for i, exc in rejected.items()]
    if part.failed is not None:
        letters += [
            item.letter(DeadLetterStage.MODEL, part.failed)
            for i, item in enumerate(part.items)
            if i not in rejected
        ]
    return letters
