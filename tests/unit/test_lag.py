"""Unit tests of the lag reader over a small fake consumer: the end offset is the larger of
ListOffsets and the last fetch's high watermark (Tansu 0.6 answers ListOffsets low)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from consumer.hooks import Hooks, PartitionLag
from consumer.intake.commits import LagReader
from consumer.state.ledger import Ledger

TP = TopicPartition("molecules", 0)


class _Consumer:
    """What the lag reader asks of a consumer: assignment, end offsets, high watermark."""

    def __init__(self, *, end: int, highwater: int | None, committed: int | None) -> None:
        self.end = end
        self.high = highwater
        self.group_committed = committed

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(partitions, self.end)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.high

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.group_committed

    async def beginning_offsets(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return dict.fromkeys(partitions, 0)


class _Seen(Hooks):
    def __init__(self) -> None:
        self.reported: Mapping[tuple[str, int], PartitionLag] = {}

    def lag(self, group: str, partitions: Mapping[tuple[str, int], PartitionLag]) -> None:
        self.reported = partitions


async def _lag(fake: _Consumer, ledger: Ledger | None = None) -> tuple[int, int]:
    hooks = _Seen()
    reader = LagReader(
        consumer=lambda: cast(AIOKafkaConsumer, cast(Any, fake)),
        ledger=ledger or Ledger(max_in_flight=64),
        hooks=hooks,
        group="g",
        broker_timeout_s=1.0,
    )
    lags = await reader.lag()
    return lags[(TP.topic, TP.partition)], hooks.reported[(TP.topic, TP.partition)].records


@pytest.mark.parametrize(
    ("end", "highwater", "expected"),
    [
        (1, 2000, 2000 - 100),  # Tansu: ListOffsets says 1, the fetch knows 2,000
        (2000, 1, 2000 - 100),  # a broker whose ListOffsets is the newer answer
        (2000, None, 2000 - 100),  # before any fetch: ListOffsets alone
        (50, None, 0),  # behind the commit: no negative lag
    ],
)
async def test_the_end_is_the_larger_of_list_offsets_and_the_high_watermark(
    end: int, highwater: int | None, expected: int
) -> None:
    fake = _Consumer(end=end, highwater=highwater, committed=100)
    assert await _lag(fake) == (expected, expected)


async def test_records_held_count_when_both_ends_read_low() -> None:
    ledger = Ledger(max_in_flight=64)
    ledger.admit(TP, [(offset, 0.0, 1) for offset in range(10)])
    fake = _Consumer(end=1, highwater=None, committed=None)
    assert await _lag(fake, ledger) == (10, 10)
