"""Unit tests for consumer.intake.fetch_recovery over an in-memory fake consumer (no broker)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from consumer.intake.fetch_recovery import FetchRecovery
from consumer.state.ledger import Ledger
from tests.record_batches import Rec, encode_batch

GOOD, BAD = TopicPartition("molecules", 0), TopicPartition("molecules", 1)
BAD_BATCH = encode_batch([Rec(b"a", b"A"), Rec(b"b", b"B", [(b"\xc3\x28", b"x")]), Rec(b"c", b"C")])


@dataclass
class FakeClient:
    """Answers Fetch requests from per-partition bytes (API v11 layout)."""

    logs: dict[TopicPartition, bytes]
    down: bool = False
    cluster: Any = field(default_factory=lambda: SimpleNamespace(leader_for_partition=lambda tp: 0))

    async def send(self, node: int, request: Any) -> Any:
        if self.down:
            raise KafkaConnectionError("broker away")
        topics: list[tuple[str, list[tuple[Any, ...]]]] = [
            (
                topic,
                [
                    (p, 0, 100, 100, 0, [], -1, self.logs[TopicPartition(topic, p)])
                    for p, _, _ in parts
                ],
            )
            for topic, parts in request.topics
        ]
        return SimpleNamespace(API_VERSION=11, topics=topics)


@dataclass
class FakeConsumer:
    positions: dict[TopicPartition, int]
    _client: FakeClient
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    def paused(self) -> set[TopicPartition]:
        return set()

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def committed(self, tp: TopicPartition) -> int | None:
        return None

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 0)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset
        self.seeks.append((tp, offset))


def setup() -> tuple[FetchRecovery, FakeConsumer, list[float]]:
    ledger = Ledger(max_in_flight=100)
    ledger.admit(GOOD, [(0, 0.0, 1), (1, 0.0, 1)])
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    logs = {GOOD: encode_batch([Rec(None, b"g")] * 6), BAD: BAD_BATCH}
    # GOOD was drained in the failed getmany: its position moved past offsets 2-5.
    consumer = FakeConsumer({GOOD: 6, BAD: 0}, FakeClient(logs))
    return FetchRecovery(ledger, sleep=sleep), consumer, waits


async def test_drained_partitions_go_back_and_the_bad_one_past_its_batch() -> None:
    recovery, consumer, waits = setup()
    (found,) = await recovery.recover(consumer, UnicodeDecodeError("utf-8", b"\xc3", 0, 1, "x"))
    assert consumer.seeks == [(GOOD, 2), (BAD, 3)]
    assert found.tp == BAD and [r.offset for r in found.records] == [0, 2]
    assert [(d.offset, d.value) for d in found.letters] == [(1, b"B")]
    assert waits == [] and recovery.attempts == 0


async def test_a_failed_raw_fetch_is_retried_with_a_growing_backoff() -> None:
    recovery, consumer, waits = setup()
    consumer._client.down = True
    for _ in range(8):
        assert await recovery.recover(consumer, ValueError("x")) == []
    assert waits == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0] and recovery.attempts == 8
    consumer._client.down = False
    assert len(await recovery.recover(consumer, ValueError("x"))) == 1
    assert recovery.attempts == 0


async def test_nothing_to_get_past_is_a_backoff_not_a_busy_loop() -> None:
    recovery, consumer, waits = setup()
    consumer._client.logs[BAD] = encode_batch([Rec(None, b"fine")])
    assert await recovery.recover(consumer, RuntimeError("odd")) == []
    assert await recovery.recover(consumer, RuntimeError("odd")) == []
    assert waits == [0.1, 0.2]
