"""The sink over in-memory fakes: a record is done only once what it produced is
acknowledged; what the broker refuses becomes dead letters or stays uncommitted, loudly."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError, TopicAuthorizationFailedError

from consumer.errors import PublishRejectedError
from consumer.reasons import DeadLetterStage
from consumer.sink.output import Output
from consumer.state.items import DeadLetter
from schemas.kafka import ProducerSettings
from tests.unit.fakes import Record, Steps, keys, molecules, until

P0 = TopicPartition("molecules", 0)


async def test_a_batch_is_done_only_once_its_predictions_are_acknowledged() -> None:
    steps = Steps.build({P0: molecules(2)}, batch_size=2)
    steps.output.acks = asyncio.Event()
    async with steps.fetching():
        await until(lambda: steps.pool.tries == 1)
        for _ in range(20):
            await asyncio.sleep(0)
        state = steps.ledger.state(P0)
        assert state.committable is None and state.working == 2 and steps.ledger.in_flight == 2
        steps.output.acks.set()
        await until(lambda: steps.ledger.state(P0).committable == 2)
    assert steps.ledger.in_flight == 0 and steps.ledger.completed == 2
    assert steps.output.predicted_keys() == keys([0, 1])


async def test_a_dead_letter_the_broker_refuses_leaves_its_offset_pending() -> None:
    """Its record leaves the window (nothing waits for it) but is not done: the partition's
    commits stop before it, so the lag grows instead of the record being lost."""
    steps = Steps.build({P0: [Record(0, b"big", b"x" * 300)]}, max_record_bytes=200)
    steps.output.refusals.append(KafkaTimeoutError())
    async with steps.fetching():
        await until(lambda: steps.ledger.in_flight == 0 and not steps.output.refusals)
        steps.consumer.add(P0, molecules(2, start=1))
        await until(lambda: steps.ledger.completed == 2)
        await steps.pipeline.committer.commit()
    state = steps.ledger.state(P0)
    assert state.committable is None and state.done == {1, 2} and state.working == 0
    assert steps.consumer.commits == [] and steps.output.letters == []
    assert steps.hooks.dead_letter_stages == []


async def test_a_batch_the_broker_refuses_for_good_becomes_dead_letters() -> None:
    steps = Steps.build({P0: molecules(2)}, batch_size=2)
    steps.output.refusals.append(PublishRejectedError([(None, ValueError("too large"))]))
    async with steps.fetching():
        await until(lambda: steps.ledger.state(P0).committable == 2)
    assert [d.offset for d in steps.output.letters] == [0, 1]
    assert steps.hooks.dead_letter_stages == [DeadLetterStage.PUBLISH] * 2
    assert steps.output.predicted == []


async def test_a_batch_whose_write_right_was_withdrawn_is_neither_dead_lettered_nor_done() -> None:
    """Review finding 2: Describe granted, Write denied on the output topic. The refusal is
    no record's fault: the batch's records are not dead-lettered (nor committed past); the
    refusal ends the process through ``Output.refused`` instead."""
    steps = Steps.build({P0: molecules(2)}, batch_size=2)
    steps.output.refusals.append(TopicAuthorizationFailedError("predictions"))
    async with steps.fetching():
        await until(lambda: steps.pool.tries == 1 and not steps.output.refusals)
        await until(lambda: not steps.dispatcher._jobs)  # the batch's task ended
        await steps.pipeline.committer.commit()
    assert steps.output.letters == [] and steps.hooks.dead_letter_stages == []
    assert steps.ledger.state(P0).committable is None and steps.consumer.commits == []


class _Builder:
    def append(self, **record: Any) -> object:
        return record


class _WriteDeniedProducer:
    """Describe granted, Write denied: every send is refused."""

    def create_batch(self) -> _Builder:
        return _Builder()

    async def send_batch(self, builder: _Builder, topic: str, *, partition: int) -> None:
        raise TopicAuthorizationFailedError(topic)

    async def send(self, topic: str, **record: Any) -> None:
        raise TopicAuthorizationFailedError(topic)

    async def stop(self) -> None:
        pass


@pytest.mark.parametrize("what", ["predictions", "dead letters"])
async def test_the_output_raises_a_write_refusal_where_it_happens_and_by_refused(
    what: str,
) -> None:
    output = Output(ProducerSettings(), output_topic="predictions", dlq_topic="dlq")
    output._producer = cast(Any, _WriteDeniedProducer())
    watching = asyncio.create_task(output.refused())
    letter = DeadLetter("molecules", 0, 0, b"k", b"v", (), DeadLetterStage.DECODE, "bad", 1)
    with pytest.raises(TopicAuthorizationFailedError):
        if what == "predictions":
            await output.predictions({0: [(b"k", b"v", None)]})
        else:
            await output.dead_letters([letter])
    with pytest.raises(TopicAuthorizationFailedError):
        await asyncio.wait_for(watching, 1.0)
    await output.stop()
