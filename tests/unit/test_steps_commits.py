"""Commits over in-memory fakes: the done prefix of each partition, out-of-order completion,
failures retried by the next commit, and the routine."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import GroupAuthorizationFailedError, KafkaConnectionError

from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings
from tests.unit.fakes import STEP_SETTINGS, InProcessPool, Steps, molecules, until

P0, P1 = TopicPartition("molecules", 0), TopicPartition("molecules", 1)


async def _done(steps: Steps, **committable: int) -> None:
    await until(
        lambda: all(
            steps.ledger.state(TopicPartition("molecules", int(p[1:]))).committable == n
            for p, n in committable.items()
        )
    )


async def test_a_commit_sends_each_partitions_done_prefix_once() -> None:
    steps = Steps.build({P0: molecules(4), P1: molecules(2, start=10)})
    async with steps.fetching():
        await _done(steps, p0=4, p1=12)
        await steps.pipeline.committer.commit()
        await steps.pipeline.committer.commit()  # nothing new: no call
    assert steps.consumer.commits == [{P0: 4, P1: 12}]
    assert steps.pipeline.committer.committed() == {P0: 4, P1: 12}
    assert steps.hooks.committed_count == 6  # counted from where each was taken up


async def test_a_commit_stops_before_the_first_record_not_done() -> None:
    steps = Steps.build({P0: molecules(4)}, pool=InProcessPool(gated=True), batch_size=2)
    async with steps.fetching():
        first, second = [await steps.pool.next_call() for _ in "ab"]
        second.succeed()
        await until(lambda: steps.ledger.completed == 2)
        await steps.pipeline.committer.commit()
        assert steps.consumer.commits == []
        first.succeed()
        await _done(steps, p0=4)
        await steps.pipeline.committer.commit()
    assert steps.consumer.commits == [{P0: 4}]


async def test_a_failed_commit_is_reported_and_the_next_commit_sends_it() -> None:
    steps = Steps.build({P0: molecules(2)})
    steps.consumer.commit_errors.append(KafkaConnectionError())
    async with steps.fetching():
        await _done(steps, p0=2)
        await steps.pipeline.committer.commit()
        assert steps.hooks.broker_errors == ["commit"]
        assert steps.pipeline.committer.committed() == {}
        await steps.pipeline.committer.commit()
    assert steps.consumer.commits == [{P0: 2}] and steps.hooks.committed_count == 2


async def test_the_commit_routine_commits_every_interval_until_cancelled() -> None:
    """The cancel lands in the very step the second commit returns in: the routine must end
    all the same (a shutdown waits for it)."""
    steps = Steps.build({P0: molecules(2)}, commit_interval_s=0.01)
    async with steps.fetching():
        routine = asyncio.create_task(steps.pipeline.committer.commit_routine())
        await until(lambda: steps.consumer.commits == [{P0: 2}])

        def cancel_now(call: str) -> None:
            routine.cancel()

        steps.consumer.answered = cancel_now
        steps.consumer.add(P0, molecules(1, start=2))
        done, _ = await asyncio.wait([routine], timeout=2.0)
    assert done and routine.cancelled()
    assert steps.consumer.commits == [{P0: 2}, {P0: 3}]


class _StoppingPool:
    stopped = False

    async def stop(self) -> None:
        self.stopped = True


async def test_a_commit_refused_at_shutdown_still_leaves_the_group_and_stops_the_pool() -> None:
    """Review finding 5: the group's rights are withdrawn and the shutdown's commit is
    refused. The refusal still ends the process, but only after the consumer left the group
    and the workers stopped."""
    steps = Steps.build({P0: molecules(2)})
    async with steps.fetching():
        await _done(steps, p0=2)
    processor = StreamProcessor(ConsumerSettings(**STEP_SETTINGS))
    pool = _StoppingPool()
    processor.pipeline, processor.pool = steps.pipeline, cast(Any, pool)
    processor.consumer = cast(Any, steps.consumer)
    processor._started = True
    steps.consumer.commit_errors.append(GroupAuthorizationFailedError())
    with pytest.raises(GroupAuthorizationFailedError):
        await processor.stop()
    assert steps.consumer.stopped and pool.stopped
    assert steps.consumer.commits == []
