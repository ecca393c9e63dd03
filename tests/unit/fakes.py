"""Small in-memory stand-ins for the consumer's collaborators (never for an integration test):
a Kafka consumer that serves queued records, a pool whose one replica computes in-process, an
output that records what it was given. With them the data path's steps run in milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from consumer.models.synthetic import SyntheticModel
from consumer.output import DeadLetter
from consumer.replica import Replica, ReplicaState
from consumer.work import OutputSpec, Produced, WorkRequest, WorkResult, compute, pack, unpack


@dataclass(frozen=True, slots=True)
class Record:
    """What the intake reads of a fetched record (aiokafka's ``ConsumerRecord``)."""

    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()
    timestamp: int = -1


class FakeConsumer:
    """Serves queued records per partition, ``max_records`` at a time, then nothing."""

    def __init__(self, records: dict[TopicPartition, list[Record]]) -> None:
        self._queued = {tp: list(rs) for tp, rs in records.items()}
        self.paused: set[TopicPartition] = set()

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        fetched: dict[TopicPartition, Any] = {}
        for tp, queue in self._queued.items():
            if tp in self.paused or not queue or max_records <= 0:
                continue
            fetched[tp], self._queued[tp] = queue[:max_records], queue[max_records:]
            max_records -= len(fetched[tp])
        # As a broker would: an empty fetch waits out its timeout (else the intake spins).
        await asyncio.sleep(0 if fetched else timeout_ms / 1000)
        return fetched

    def assignment(self) -> set[TopicPartition]:
        return set(self._queued)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)


class InProcessPool:
    """One replica with one slot that computes each batch here, its request and result
    pickled as they would cross to a worker and back."""

    def __init__(self) -> None:
        self.replica = Replica("fake-worker", None, 0.0, state=ReplicaState.READY)
        self.model = SyntheticModel()

    async def acquire(self) -> Replica:
        self.replica.busy += 1
        return self.replica

    def release(self, replica: Replica) -> None:
        replica.busy -= 1

    async def process(
        self, replica: Replica, request: WorkRequest, *, timeout_s: float
    ) -> WorkResult:
        crossed = unpack(pack(request), WorkRequest)
        result = compute(crossed, self.model, plugin="synthetic", worker=replica.name)
        return unpack(pack(result), WorkResult)


@dataclass
class RecordingOutput:
    """Acknowledges everything at once and keeps it."""

    partitions: tuple[int, ...] = (0, 1)
    predicted: list[Produced] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)

    async def spec(self, max_smiles_length: int, max_id_length: int) -> OutputSpec:
        return OutputSpec(self.partitions, None, max_smiles_length, max_id_length)

    async def predictions(self, produced: dict[int, Sequence[Produced]]) -> None:
        for records in produced.values():
            self.predicted.extend(records)

    async def dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        self.letters.extend(letters)
