"""Unit tests of the pool's slots (``--worker-concurrency``): a replica takes K batches at once,
stops only when its last slot is back (replicas are faked; the Ray side is integration-tested)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from consumer.pool.model_actor import WorkerInfo
from consumer.pool.occupancy import Occupancy
from consumer.pool.replica import ActorOptions, ActorSpec, Replica, ReplicaState
from consumer.pool.replica_pool import ReplicaPool
from consumer.reasons import LossReason


class _Remote:
    def __init__(self, value: Any) -> None:
        self._value = value

    def remote(self) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(self._value)
        return future


class _Handle:
    def __init__(self, name: str) -> None:
        self.info = _Remote(WorkerInfo("node-1", "host", 1, "synthetic", "1"))


@pytest.fixture
def fake_actors(monkeypatch: pytest.MonkeyPatch) -> None:
    def spawn(self: ActorSpec, name: str, now: float) -> Replica:
        return Replica(name=name, handle=_Handle(name), created_at=now, slots=self.concurrency)

    monkeypatch.setattr(ActorSpec, "spawn", spawn)
    monkeypatch.setattr("consumer.pool.replica_pool.kill", lambda replica: None)


def _pool(target: int, concurrency: int) -> ReplicaPool:
    return ReplicaPool(
        model="synthetic",
        model_options={},
        actor_options=ActorOptions(),
        target=target,
        concurrency=concurrency,
    )


@pytest.fixture
def pool(fake_actors: None) -> ReplicaPool:
    return _pool(target=1, concurrency=3)


async def _all_ready(pool: ReplicaPool, count: int) -> None:
    await pool.start()
    for _ in range(100):
        if pool.counts()[ReplicaState.READY] == count:
            return
        await asyncio.sleep(0)


def _state(replica: Replica) -> ReplicaState:
    return replica.state  # read afresh (mypy would narrow the attribute)


async def _ready(pool: ReplicaPool) -> Replica:
    await _all_ready(pool, 1)
    (replica,) = pool.workers()
    return replica


async def test_a_replica_takes_as_many_batches_as_it_has_slots(pool: ReplicaPool) -> None:
    replica = await _ready(pool)
    taken = [await pool.acquire() for _ in range(3)]
    assert taken == [replica] * 3 and replica.busy == 3 and replica.state is ReplicaState.BUSY
    fourth = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    assert not fourth.done(), "no fourth slot"
    pool.release(replica)
    assert await asyncio.wait_for(fourth, 1) is replica
    for _ in range(3):
        pool.release(replica)
    assert replica.busy == 0 and _state(replica) is ReplicaState.READY


async def test_a_surplus_or_draining_replica_stops_when_its_last_slot_is_back(
    pool: ReplicaPool,
) -> None:
    replica = await _ready(pool)
    await pool.acquire()
    await pool.acquire()
    pool.resize(0)
    assert replica.state is ReplicaState.BUSY, "busy replicas are not stopped mid-batch"
    pool.release(replica)
    assert _state(replica) is ReplicaState.DRAINING, "no new batch for a surplus replica"
    pool.release(replica)
    assert _state(replica) is ReplicaState.STOPPED and pool.workers() == []


async def test_a_preempted_nodes_busy_replica_takes_no_new_batch(pool: ReplicaPool) -> None:
    replica = await _ready(pool)
    await pool.acquire()
    pool.drain_nodes(["node-1"])
    assert replica.state is ReplicaState.DRAINING
    other = await asyncio.wait_for(pool.acquire(), 1)
    assert other is not replica, "its free slots are not handed out; a replacement's are"
    pool.release(replica)
    assert _state(replica) is ReplicaState.STOPPED
    await pool.stop()


async def test_the_pool_tells_busy_slots_and_batches_waiting_for_one(pool: ReplicaPool) -> None:
    replica = await _ready(pool)
    assert pool.occupancy() == Occupancy(0, 0, 3)
    for _ in range(3):
        await pool.acquire()
    waiting = [asyncio.create_task(pool.acquire()) for _ in range(2)]
    await asyncio.sleep(0.01)
    assert pool.occupancy() == Occupancy(3, 2, 3)
    pool.release(replica)
    await asyncio.sleep(0.01)
    assert pool.occupancy() == Occupancy(3, 1, 3)
    waiting[1].cancel()  # a withdrawn batch waits no more
    await asyncio.sleep(0.01)
    assert pool.occupancy() == Occupancy(3, 0, 3)


async def test_parts_waiting_take_different_workers_never_the_lost_ones_slot(
    fake_actors: None,
) -> None:
    """With one slot a worker (the default), the parts of a split batch waiting for slots each
    take the next one freed or deployed: a worker lost to a timeout gives none back."""
    pool = _pool(target=2, concurrency=1)
    await _all_ready(pool, 2)
    hung, other = await pool.acquire(), await pool.acquire()
    parts = [asyncio.create_task(pool.acquire()) for _ in range(2)]
    pool.lose(hung, LossReason.TIMEOUT)  # replaced in the background
    pool.release(other)
    taken = await asyncio.wait_for(asyncio.gather(*parts), 1)
    assert hung not in taken and len(set(map(id, taken))) == 2, "two workers, not one twice"
    await pool.stop()


async def test_batches_taken_together_go_to_different_multi_slot_workers(
    fake_actors: None,
) -> None:
    pool = _pool(target=2, concurrency=3)
    await _all_ready(pool, 2)
    first, second = await pool.acquire(), await pool.acquire()
    assert first is not second, "the least busy replica's slot, not the same one's next"
    third = await pool.acquire()
    assert {first.busy, second.busy} == {1, 2} and third in (first, second)
    await pool.stop()
