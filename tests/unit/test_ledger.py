"""PartitionState and the in-flight ledger (pure: no broker)."""

from __future__ import annotations

from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from consumer.state.ledger import Ledger
from consumer.state.offsets import PartitionState

TP = TopicPartition("molecules", 0)


@given(st.permutations(list(range(30))))
def test_a_partition_commits_only_past_a_fully_done_prefix(order: list[int]) -> None:
    state = PartitionState()
    for offset in range(30):
        state.register(offset, timestamp=float(offset))
    done: set[int] = set()
    for offset in order:
        state.complete(offset)
        done.add(offset)
        prefix = next(i for i in range(31) if i not in done)
        assert state.committable == (prefix if prefix else None)
        assert state.oldest_pending() == (float(prefix) if prefix < 30 else None)
        assert len(state.pending) == len(state.timestamps) == 30 - prefix


def test_to_commit_is_none_once_committed() -> None:
    state = PartitionState()
    state.register(5)
    state.complete(5)
    assert state.to_commit() == 6
    state.committed = 6
    assert state.to_commit() is None


async def test_the_window_fills_and_frees() -> None:
    seen: list[int] = []
    ledger = Ledger(max_in_flight=2, on_in_flight=seen.append)
    ledger.admit(TP, [(0, 0.0, 1)])
    ledger.admit(TP, [(1, 0.0, 1)])
    assert ledger.full and not ledger.room.is_set()
    ledger.to_work({TP: 2})
    assert ledger.working([TP])
    ledger.done([(TP, 0)])
    assert not ledger.full and ledger.room.is_set() and ledger.progress.is_set()
    ledger.leave([(TP, 1)])  # abandoned: its offset stays pending
    assert not ledger.working([TP])
    assert ledger.state(TP).committable == 1 and list(ledger.state(TP).pending) == [1]
    assert ledger.completed == 1 and seen == [1, 2, 1, 0]


async def test_a_revoke_drops_one_state_object() -> None:
    ledger = Ledger(max_in_flight=10)
    ledger.admit(TP, [(3, 0.0, 1)])
    ledger.state(TP).committed = 3
    ledger.state(TP).lag_base = 1
    ledger.forget([TP])
    assert ledger.partitions.get(TP) is None
    ledger.release([(TP, 3)])  # its record leaves after the revoke
    assert ledger.in_flight == ledger.in_flight_bytes == 0


async def test_an_offset_that_moves_back_starts_the_partition_afresh() -> None:
    ledger = Ledger(max_in_flight=10)
    ledger.admit(TP, [(7, 0.0, 1)])
    ledger.admit(TP, [(2, 0.0, 1)])
    assert list(ledger.state(TP).pending) == [2]


async def test_a_batch_is_admitted_and_done_with_one_update_of_the_window() -> None:
    seen: list[int] = []
    ledger = Ledger(max_in_flight=100, on_in_flight=seen.append)
    other = TopicPartition("molecules", 1)
    ledger.admit(TP, [(0, 0.0, 1), (1, 0.0, 1), (2, 0.0, 1)])
    ledger.admit(other, [(5, 0.0, 1)])
    ledger.to_work({TP: 3, other: 1})
    ledger.done([(TP, 2), (other, 5), (TP, 0)])
    assert seen == [3, 4, 1]
    assert ledger.state(TP).committable == 1 and ledger.state(other).committable == 6
    assert ledger.state(TP).working == 1 and ledger.completed == 3


async def test_the_window_is_bounded_in_bytes_too() -> None:
    ledger = Ledger(max_in_flight=100, max_in_flight_bytes=1000)
    ledger.admit(TP, [(0, 0.0, 600)])
    assert not ledger.full
    ledger.admit(TP, [(1, 0.0, 500)])  # a fetch may overshoot the bound by its own size
    assert ledger.full and not ledger.room.is_set() and ledger.in_flight_bytes == 1100
    ledger.to_work({TP: 2})
    ledger.done([(TP, 1)])
    assert not ledger.full and ledger.room.is_set() and ledger.in_flight_bytes == 600
    ledger.forget([TP])
    ledger.leave([(TP, 0)])  # a revoked partition's record still frees its bytes
    assert ledger.in_flight == ledger.in_flight_bytes == 0
