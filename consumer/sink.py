"""The sink: outcomes become predictions and dead letters, acknowledged, then marked done.

A record is done only when everything it produced is acknowledged by the broker; a dead letter
that even the broker refuses leaves its offset pending (the lag grows, alerts fire) rather
than being dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from aiokafka import TopicPartition

from consumer.hooks import Hooks
from consumer.items import Outcome
from consumer.ledger import Ledger
from consumer.output import DeadLetter, Output
from schemas import Prediction

log = structlog.get_logger(__name__)


class Sink:
    """Publishes outcomes through an :class:`~consumer.output.Output` and marks them done."""

    def __init__(
        self,
        *,
        output: Output,
        ledger: Ledger,
        hooks: Hooks,
        model: str,
        clock: Callable[[], float],
    ) -> None:
        self._output = output
        self._ledger = ledger
        self._hooks = hooks
        self._model = model
        self._clock = clock

    async def publish(self, outcomes: list[Outcome]) -> None:
        """Send one prediction per outcome (and the dead letters of failed ones); returns
        when all are acknowledged, their records done."""
        now = datetime.now(UTC)
        predictions = [self._prediction(o, now) for o in outcomes]
        letters = [
            o.item.letter(o.error_stage, o.result.error or "")
            for o in outcomes
            if o.error_stage is not None
        ]
        await asyncio.gather(
            self._output.predictions(predictions, [o.item.headers for o in outcomes]),
            self._output.dead_letters(letters),
        )
        acked_ms = time.time() * 1000
        for outcome, prediction in zip(outcomes, predictions, strict=True):
            ts = outcome.item.timestamp_ms
            self._hooks.prediction(prediction.status, (acked_ms - ts) / 1000 if ts > 0 else None)
            self._ledger.done(outcome.item.tp, outcome.item.offset)
        for letter in letters:
            self._hooks.dead_letter(letter.stage)

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
            self._ledger.leave(tp)
            return
        self._hooks.dead_letter(letter.stage)
        self._ledger.done(tp, letter.offset)

    def _prediction(self, outcome: Outcome, now: datetime) -> Prediction:
        item, result, replica = outcome.item, outcome.result, outcome.replica
        info = replica.info if replica else None
        return Prediction(
            id=item.molecule.id,
            smiles=item.molecule.smiles,
            status=result.status,
            outputs=result.outputs,
            error=result.error,
            model=info.model if info else self._model,
            model_version=info.model_version if info else "",
            worker=replica.name if replica else "",
            attempts=item.attempts,
            source_topic=item.tp.topic,
            source_partition=item.tp.partition,
            source_offset=item.offset,
            produced_at=now,
            latency_ms=(self._clock() - item.fetched_at) * 1000,
        )
