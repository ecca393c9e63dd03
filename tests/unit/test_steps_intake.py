"""The intake over in-memory fakes: fetching, the in-flight window (pause, resume), fetch
errors, records refused at once, and records waiting for their writer schema."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from consumer.intake import fetch_loop
from consumer.intake.screen import size_of
from consumer.reasons import DeadLetterStage
from schemas import MOLECULE_CODEC, Molecule
from schemas.codec import load_schema
from schemas.framing import registry_framed
from tests.unit.fakes import FakeRegistry, InProcessPool, Record, Steps, keys, molecules, until

P0 = TopicPartition("molecules", 0)
SCHEMA_ID = 7


def _framed(offset: int) -> Record:
    """A molecule in Schema Registry framing, naming schema :data:`SCHEMA_ID`."""
    key = keys([offset])[0]
    body = MOLECULE_CODEC.encode_body(Molecule(key.decode(), "CCO"))
    return Record(offset, key, registry_framed(SCHEMA_ID, body))


async def test_at_the_window_the_intake_pauses_and_resumes_once_records_are_done() -> None:
    steps = Steps.build(
        {P0: molecules(8)}, pool=InProcessPool(gated=True), batch_size=4, max_in_flight=4
    )
    async with steps.fetching():
        first = await steps.pool.next_call()
        assert first.request.offsets == [0, 1, 2, 3]
        await until(lambda: P0 in steps.consumer.paused)
        assert steps.pool.calls.empty()
        first.succeed()
        second = await steps.pool.next_call()
        assert second.request.offsets == [4, 5, 6, 7]  # resumed, fetched, full again
        second.succeed()
        await until(lambda: steps.ledger.state(P0).committable == 8)
    assert steps.ledger.in_flight == 0


async def test_the_fetch_routine_ends_when_cancelled_as_room_frees() -> None:
    """A shutdown cancels the fetch routine one loop step after a batch freed room in the
    window it waits on (the routine's wake-up is scheduled, not yet run): the routine must
    end, or the shutdown, which waits for it, hangs."""
    steps = Steps.build(
        {P0: molecules(4)}, pool=InProcessPool(gated=True), batch_size=4, max_in_flight=4
    )
    routine = asyncio.create_task(steps.intake.fetch_routine())
    call = await steps.pool.next_call()
    await until(lambda: P0 in steps.consumer.paused)
    loop = asyncio.get_running_loop()

    def cancel_next_step(count: int) -> None:
        loop.call_soon(routine.cancel)

    steps.hooks.on_in_flight = cancel_next_step
    call.succeed()
    done, _ = await asyncio.wait([routine], timeout=2.0)
    assert done and routine.cancelled()
    await steps.dispatcher.drain(0.0)


async def test_a_failed_fetch_is_reported_and_tried_again() -> None:
    steps = Steps.build({P0: molecules(2)})
    steps.consumer.fetch_errors.append(KafkaConnectionError())
    async with steps.fetching():
        await until(lambda: steps.ledger.state(P0).committable == 2)
    assert steps.hooks.broker_errors == ["fetch"]
    assert steps.output.predicted_keys() == keys([0, 1])


async def test_a_record_over_its_bound_is_a_dead_letter_at_once() -> None:
    records = [*molecules(1), Record(1, b"big", b"x" * 300), *molecules(1, start=2)]
    steps = Steps.build({P0: records}, max_record_bytes=200)
    async with steps.fetching():
        await until(lambda: steps.ledger.state(P0).committable == 3)
    assert [(d.offset, d.value) for d in steps.output.letters] == [(1, b"x" * 300)]
    assert steps.hooks.dead_letter_stages == [DeadLetterStage.DECODE]
    assert steps.output.predicted_keys() == keys([0, 2])


async def test_registry_framing_without_a_registry_is_a_dead_letter() -> None:
    steps = Steps.build({P0: [_framed(0)]})
    async with steps.fetching():
        await until(lambda: steps.ledger.state(P0).committable == 1)
    assert [d.offset for d in steps.output.letters] == [0]
    assert steps.pool.tries == 0


async def test_a_record_waits_for_its_writer_schema_then_is_computed() -> None:
    registry = FakeRegistry()
    steps = Steps.build({P0: [_framed(0), *molecules(1, start=1)]}, registry=registry)
    async with steps.fetching():
        await until(lambda: steps.ledger.state(P0).committable is None and bool(registry.lookups))
        await until(lambda: steps.output.predicted_keys() == keys([1]))
        assert steps.ledger.state(P0).committable is None  # offset 0 still pending
        registry.publish(SCHEMA_ID, load_schema("molecule"))
        await until(lambda: steps.ledger.state(P0).committable == 2)
    assert steps.output.predicted_keys() == keys([0, 1]) and steps.output.letters == []


async def test_the_window_filling_while_a_schema_is_pending_does_not_stall_the_intake() -> None:
    """Both records of the window (full by its bytes) wait for their writer schema while the
    intake waits for room. When the schema arrives they must be sent: nothing else would
    free room, so left in the batcher they would stall the consumer for good."""
    registry = FakeRegistry()
    size = size_of(_framed(0))
    steps = Steps.build(
        {P0: [_framed(0)]},
        registry=registry,
        batch_size=4,
        max_in_flight=4,
        max_in_flight_bytes=2 * size,
        max_record_bytes=size,
    )
    async with steps.fetching():
        await until(lambda: registry.lookups == [SCHEMA_ID])
        steps.consumer.add(P0, [_framed(1)])
        await until(lambda: steps.ledger.full and P0 in steps.consumer.paused)
        await until(lambda: registry.lookups == [SCHEMA_ID, SCHEMA_ID])
        registry.publish(SCHEMA_ID, load_schema("molecule"))
        await until(lambda: steps.ledger.state(P0).committable == 2)
        await until(lambda: P0 not in steps.consumer.paused)
    assert steps.output.predicted_keys() == keys([0, 1]) and steps.ledger.in_flight == 0


async def test_records_slipped_in_while_the_window_is_full_are_dispatched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review finding 9: P0's four records fill the window (its bytes) and run; a keep-alive
    poll brings in P1's four anyway (a fetch that was out when P1 paused), enough to fill
    the window alone once P0's batch is done. They must go to a worker, not wait in the
    batcher (short of a batch) while the intake polls for room for good."""
    monkeypatch.setattr(fetch_loop, "KEEPALIVE_POLL_S", 0.01)
    p1 = TopicPartition("molecules", 1)
    four = sum(size_of(r) for r in molecules(4))
    steps = Steps.build(
        {P0: molecules(4)},
        pool=InProcessPool(gated=True, slots=1),
        batch_size=8,
        batch_wait_ms=1000.0,  # never due: the clock does not move
        max_in_flight=8,
        max_in_flight_bytes=four,
        max_record_bytes=four,
    )
    async with steps.fetching():
        p0 = await steps.pool.next_call()  # flushed at the full window: P0's four
        steps.consumer.slipped = {p1: molecules(4, start=10)}
        await until(lambda: steps.ledger.in_flight == 8)
        p0.succeed()
        (await steps.pool.next_call()).succeed()
        await until(lambda: steps.ledger.state(p1).committable == 14)
    assert steps.output.predicted_keys() == keys([*range(4), *range(10, 14)])
