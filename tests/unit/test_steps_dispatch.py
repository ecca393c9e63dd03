"""Dispatch over in-memory fakes: retries, splits, lost workers and the drain's deadline, each
try answered by the test (a gated pool) and the clock moved by it."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition

from consumer.errors import BatchFailedError, ModelOutputError, WorkerLostError
from consumer.reasons import DeadLetterStage, LossReason
from tests.unit.fakes import InProcessPool, ManualClock, Steps, keys, molecules, until

P0, P1 = TopicPartition("molecules", 0), TopicPartition("molecules", 1)


def _gated(records: dict[TopicPartition, int], **settings: Any) -> Steps:
    return Steps.build(
        {tp: molecules(n) for tp, n in records.items()},
        pool=InProcessPool(gated=True),
        **settings,
    )


async def test_a_batch_is_computed_published_and_its_offsets_become_committable() -> None:
    steps = Steps.build({P0: molecules(6)})
    async with steps.fetching():
        await until(lambda: steps.ledger.state(P0).committable == 6)
    assert steps.output.predicted_keys() == keys(range(6))
    assert steps.pool.tries == 2 and steps.ledger.in_flight == 0


async def test_a_failed_try_is_retried_and_counted() -> None:
    steps = _gated({P0: 2}, batch_size=2)
    async with steps.fetching():
        (await steps.pool.next_call()).fail(BatchFailedError("model raised"))
        again = await steps.pool.next_call()
        assert again.request.attempts == 2
        again.succeed()
        await until(lambda: steps.ledger.state(P0).committable == 2)
    assert steps.hooks.retries == 1 and steps.output.letters == []


async def test_a_molecule_failing_every_try_is_isolated_failed_and_dead_lettered() -> None:
    steps = _gated({P0: 2}, batch_size=2, max_attempts=1)
    async with steps.fetching():
        (await steps.pool.next_call()).fail(BatchFailedError("whole batch"))
        halves = [await steps.pool.next_call(), await steps.pool.next_call()]
        assert sorted(c.request.offsets for c in halves) == [[0], [1]]
        bad, good = sorted(halves, key=lambda c: c.request.offsets)
        bad.fail(BatchFailedError("molecule 0"))
        good.succeed()
        await until(lambda: steps.ledger.state(P0).committable == 2)
    assert [d.offset for d in steps.output.letters] == [0]
    assert steps.hooks.dead_letter_stages == [DeadLetterStage.MODEL]
    assert len(steps.output.predicted) == 2  # one of them FAILED, beside its dead letter


async def test_a_model_output_error_fails_the_batch_once_without_retry_or_split() -> None:
    steps = _gated({P0: 3}, batch_size=3)
    async with steps.fetching():
        (await steps.pool.next_call()).fail(ModelOutputError("model returned a str"))
        await until(lambda: steps.ledger.state(P0).committable == 3)
    assert steps.pool.tries == 1 and steps.hooks.retries == 0
    assert sorted(d.offset for d in steps.output.letters) == [0, 1, 2]


async def test_a_batch_that_timed_out_is_split_in_quarters_at_once() -> None:
    steps = _gated({P0: 8}, batch_size=8)
    async with steps.fetching():
        first = await steps.pool.next_call()
        first.fail(WorkerLostError(first.replica.name, LossReason.TIMEOUT))
        parts = [await steps.pool.next_call() for _ in range(4)]
        assert sorted(c.request.offsets for c in parts) == [[0, 1], [2, 3], [4, 5], [6, 7]]
        for call in parts:
            call.succeed()
        await until(lambda: steps.ledger.state(P0).committable == 8)
    assert steps.output.letters == [] and len(steps.output.predicted) == 8


async def test_a_worker_lost_while_its_batch_is_being_split_loses_no_molecule() -> None:
    """The batch failed its attempts and is split; the worker computing one half dies while
    the other half computes: that half is tried again on the replacement, nothing is lost or
    published twice, and the lost worker's slot is never given back."""
    steps = _gated({P0: 2}, batch_size=2, max_attempts=2)
    async with steps.fetching():
        for _ in range(2):
            (await steps.pool.next_call()).fail(BatchFailedError("model raised"))
        halves = sorted(
            [await steps.pool.next_call(), await steps.pool.next_call()],
            key=lambda c: c.request.offsets,
        )
        assert [c.request.offsets for c in halves] == [[0], [1]]
        lost, other = halves
        lost.fail(WorkerLostError(lost.replica.name, LossReason.DIED))
        await until(lambda: lost.replica is not steps.pool.replica)  # replaced
        other.succeed()
        again = await steps.pool.next_call()
        assert again.request.offsets == [0] and again.replica is steps.pool.replica
        again.succeed()
        await until(lambda: steps.ledger.state(P0).committable == 2)
    assert steps.output.predicted_keys() == keys([0, 1])
    assert steps.output.letters == []
    assert steps.hooks.retries == 2  # the batch's second attempt, the lost half's second try
    assert lost.replica.busy == 1  # the lost half's slot stays taken: the worker is gone
    assert steps.ledger.in_flight == 0 and steps.ledger.state(P0).working == 0


async def test_a_shutdown_drain_past_its_deadline_cancels_what_still_runs() -> None:
    """The drain waits for the running batches until its deadline passes on the clock; then
    what still runs is cancelled, its offsets left uncommitted for the next owner."""
    clock = ManualClock()
    steps = Steps.build(
        {P0: molecules(2), P1: molecules(2)},
        pool=InProcessPool(gated=True),
        clock=clock,
        batch_size=2,
    )
    async with steps.fetching():
        calls = {c.request.partitions[0]: c for c in [await steps.pool.next_call() for _ in "ab"]}
        draining = asyncio.create_task(steps.dispatcher.drain(5.0))
        calls[1].succeed()  # progress before the deadline: the drain keeps waiting
        await until(lambda: steps.ledger.state(P1).committable == 2)
        for _ in range(20):
            await asyncio.sleep(0)
        assert not draining.done()
        clock.advance(5.0)
        await asyncio.wait_for(draining, 1.0)  # woken by its recheck, past the deadline
        assert calls[0].answer.cancelled()
    assert steps.ledger.state(P0).committable is None
    assert steps.output.predicted_keys() == keys([0, 1])  # P1's


async def test_a_revoke_drain_past_its_deadline_commits_what_is_done_and_returns() -> None:
    """A revoke's drain that runs out of time leaves the running batch to finish (its
    output is a duplicate the next owner may make too) and commits only what is done."""
    clock = ManualClock()
    steps = Steps.build(
        {P0: molecules(4)}, pool=InProcessPool(gated=True), clock=clock, batch_size=2
    )
    async with steps.fetching():
        first, second = [await steps.pool.next_call() for _ in "ab"]
        first.succeed()
        await until(lambda: steps.ledger.state(P0).committable == 2)
        revoking = asyncio.create_task(steps.revoke(P0))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not revoking.done()
        clock.advance(5.0)
        await asyncio.wait_for(revoking, 1.0)
        assert steps.consumer.commits == [{P0: 2}]
        second.succeed()  # after the revoke: its partition forgotten, nothing breaks
        await until(lambda: steps.ledger.in_flight == 0)
    assert P0 not in steps.ledger.partitions.partitions()
    assert steps.pipeline.listener.revokes == 1
