"""The rebalance listener over in-memory fakes: a revoke landing during a retry, during a
withdraw, and with its commit failing; what a revoke drops, withdraws, waits for and commits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    GroupAuthorizationFailedError,
    RebalanceInProgressError,
)

from consumer.errors import BatchFailedError, WorkerLostError
from consumer.reasons import LossReason
from tests.unit.fakes import InProcessPool, Steps, keys, molecules, until

P0, P1, P2 = (TopicPartition("molecules", p) for p in range(3))


def _one_slot(records: dict[TopicPartition, int], **settings: Any) -> Steps:
    return Steps.build(
        {tp: molecules(n) for tp, n in records.items()},
        pool=InProcessPool(gated=True, slots=1),
        **settings,
    )


async def _settled(task: asyncio.Task[None]) -> None:
    await asyncio.wait_for(task, 1.0)


async def test_a_revoke_during_a_retry_withdraws_the_batch_waiting_for_its_retry() -> None:
    """P0's batch lost its worker and waits for a slot to try again (behind P1's batch; the
    replacement is not ready yet): the revoke withdraws it at once. Its retry never reaches a
    worker, nothing of it is produced or committed, and no slot is lost."""
    steps = Steps.build(
        {P0: molecules(2), P1: molecules(2)},
        pool=InProcessPool(gated=True, slots=1, replace_lost=False),
        batch_size=2,
    )
    async with steps.fetching():
        p0 = await steps.pool.next_call()
        p0.fail(WorkerLostError(p0.replica.name, LossReason.DIED))
        await until(lambda: steps.hooks.retries == 1)  # P0's retry waits for a slot
        await _settled(asyncio.create_task(steps.revoke(P0)))
        assert steps.consumer.commits == [] and steps.ledger.in_flight == 2
        steps.pool.deploy()
        p1 = await steps.pool.next_call()
        assert p1.request.partitions == [1, 1]
        p1.succeed()
        steps.consumer.add(P1, molecules(2, start=2))
        (await steps.pool.next_call()).succeed()  # the one slot is free again
        await until(lambda: steps.ledger.state(P1).committable == 4)
    assert steps.pool.tries == 3
    assert steps.output.predicted_keys() == keys(range(4))  # P1's only
    assert steps.ledger.in_flight == 0


async def test_a_revoke_during_a_retry_on_a_worker_waits_for_it_and_commits_it() -> None:
    steps = _one_slot({P0: 2}, batch_size=2)
    async with steps.fetching():
        (await steps.pool.next_call()).fail(BatchFailedError("model raised"))
        retry = await steps.pool.next_call()
        revoking = asyncio.create_task(steps.revoke(P0))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not revoking.done()
        retry.succeed()
        await _settled(revoking)
    assert steps.consumer.commits == [{P0: 2}]
    assert steps.output.predicted_keys() == keys([0, 1])


async def test_a_revoke_during_a_withdraw_commits_what_that_drain_waited_for() -> None:
    """A shutdown drain has withdrawn P1's batch (waiting for the one slot) and waits for
    P0's, running; a revoke of both lands meanwhile. It waits for P0's batch too, commits it,
    commits nothing of P1 (withdrawn, never produced); nothing is released twice."""
    steps = _one_slot({P0: 2, P1: 2}, batch_size=2)
    async with steps.fetching():
        p0 = await steps.pool.next_call()
        shutdown = asyncio.create_task(steps.dispatcher.drain(5.0))
        await until(lambda: steps.ledger.in_flight == 2)  # P1's batch withdrawn
        revoking = asyncio.create_task(steps.revoke(P0, P1))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not revoking.done() and not shutdown.done()
        p0.succeed()
        await _settled(revoking)
        assert await asyncio.wait_for(shutdown, 1.0) == 2
    assert steps.consumer.commits == [{P0: 2}]
    assert steps.pool.tries == 1 and steps.output.predicted_keys() == keys([0, 1])
    assert steps.ledger.in_flight == 0 and steps.ledger.in_flight_bytes == 0


async def test_a_revoke_withdrawing_a_mixed_batch_sends_the_other_partitions_records_again() -> (
    None
):
    steps = _one_slot({P2: 2, P0: 1, P1: 1}, batch_size=2)
    async with steps.fetching():
        p2 = await steps.pool.next_call()  # the mixed batch of P0 and P1 waits for the slot
        await _settled(asyncio.create_task(steps.revoke(P0)))
        assert steps.ledger.in_flight == 3
        p2.succeed()
        again = await steps.pool.next_call()
        assert again.request.partitions == [1]
        again.succeed()
        await until(lambda: steps.ledger.state(P1).committable == 1)
    assert steps.output.predicted_keys() == keys([0, 0, 1])  # P2's two, P1's one
    assert steps.ledger.in_flight == 0 and steps.consumer.commits == []


@pytest.mark.parametrize(
    "error", [CommitFailedError("generation changed"), RebalanceInProgressError(), TimeoutError()]
)
async def test_a_commit_failing_during_a_revoke_is_reported_and_the_revoke_completes(
    error: Exception,
) -> None:
    """The revoke's commit fails: counted as a broker error, the partition still forgotten
    (the next owner redoes what was not committed), the other partition committed later."""
    steps = Steps.build({P0: molecules(2), P1: molecules(2)}, batch_size=2)
    async with steps.fetching():
        await until(lambda: all(steps.ledger.state(tp).committable == 2 for tp in (P0, P1)))
        steps.consumer.commit_errors.append(error)
        await _settled(asyncio.create_task(steps.revoke(P0)))
        assert steps.hooks.broker_errors == ["commit"]
        assert steps.pipeline.listener.revokes == 1
        assert steps.hooks.revoked_partitions == [[("molecules", 0)]]
        assert P0 not in steps.ledger.partitions.partitions()
        await steps.pipeline.committer.commit()
    assert steps.consumer.commits == [{P1: 2}]
    assert steps.pipeline.committer.committed() == {P1: 2}


async def test_a_revoke_drops_what_is_still_being_batched() -> None:
    steps = Steps.build({P0: molecules(3)}, batch_size=4, batch_wait_ms=1000.0)
    async with steps.fetching():
        await until(lambda: len(steps.intake.batcher) == 3)
        await _settled(asyncio.create_task(steps.revoke(P0)))
        assert len(steps.intake.batcher) == 0
    assert steps.ledger.in_flight == 0 and steps.pool.tries == 0
    assert steps.consumer.commits == [] and steps.output.predicted == []


async def test_partitions_assigned_while_the_window_is_full_start_paused() -> None:
    steps = _one_slot({P0: 4}, batch_size=4, max_in_flight=4)
    async with steps.fetching():
        call = await steps.pool.next_call()
        await steps.consumer.rebalance(steps.pipeline.listener, assigned={P1})
        assert P1 in steps.consumer.paused
        call.succeed()
        await until(lambda: not steps.consumer.paused)


async def test_a_commit_refused_during_a_revoke_still_forgets_the_partition() -> None:
    """Review finding 5: the revoke's commit is refused (the group's rights withdrawn). The
    refusal is raised, and the partition is forgotten and the revoke counted all the same:
    aiokafka swallows the listener's error, and stale state must not stay behind."""
    steps = Steps.build({P0: molecules(2), P1: molecules(2)}, batch_size=2)
    async with steps.fetching():
        await until(lambda: all(steps.ledger.state(tp).committable == 2 for tp in (P0, P1)))
        steps.consumer.commit_errors.append(GroupAuthorizationFailedError())
        with pytest.raises(GroupAuthorizationFailedError):
            await steps.revoke(P0)
        assert P0 not in steps.ledger.partitions.partitions()
        assert steps.pipeline.listener.revokes == 1
        assert steps.hooks.revoked_partitions == [[("molecules", 0)]]
