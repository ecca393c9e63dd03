"""Small in-memory stand-ins for the consumer's collaborators (never for an integration test):
a Kafka consumer that serves queued records, a pool whose one replica computes in-process, an
output that records what it was given. With them the data path's steps run in milliseconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from aiokafka import TopicPartition

from consumer.dispatch import Dispatcher, DispatchLimits
from consumer.hooks import Hooks
from consumer.input_settings import RecordLimits
from consumer.intake.batching import Batcher
from consumer.intake.fetch_loop import Intake
from consumer.pool.model_actor import ModelWorker
from consumer.pool.replica import Replica, ReplicaState
from consumer.sink.publish import Sink
from consumer.state.items import DeadLetter, Item
from consumer.state.ledger import Ledger
from consumer.state.throughput import Throughput
from consumer.state.work_messages import OutputSpec, Produced, WorkRequest, WorkResult, pack, unpack
from schemas.wire import WriterSchemas

if TYPE_CHECKING:
    from consumer.ops.tracing import Tracer


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
    """One replica with one slot whose worker (the real actor class, not in Ray) computes
    each batch here, its request and result crossing as bytes as they would to an actor."""

    def __init__(self, worker: ModelWorker | None = None) -> None:
        self.replica = Replica("fake-worker", None, 0.0, state=ReplicaState.READY)
        self.worker = worker or ModelWorker("fake-worker", "synthetic", {})

    async def acquire(self) -> Replica:
        self.replica.busy += 1
        return self.replica

    def release(self, replica: Replica) -> None:
        replica.busy -= 1

    async def process(
        self, replica: Replica, request: WorkRequest, *, timeout_s: float
    ) -> WorkResult:
        return unpack(self.worker.process(pack(request)), WorkResult)


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


async def run_pipeline(
    by_partition: dict[TopicPartition, list[Record]],
    limits: RecordLimits,
    *,
    pool: InProcessPool | None = None,
    tracer: Tracer | None = None,
) -> tuple[RecordingOutput, Ledger]:
    """Run the real intake, dispatch and sink over the fakes until every record of
    ``by_partition`` is done (bounded: 10 s), then drain."""
    output, ledger, hooks = RecordingOutput(), Ledger(16, 2000), Hooks()
    consumer = FakeConsumer(by_partition)
    dispatcher = Dispatcher(
        pool=cast(Any, pool or InProcessPool()),
        sink=Sink(output=cast(Any, output), ledger=ledger, hooks=hooks),
        ledger=ledger,
        throughput=Throughput(completed=lambda: ledger.completed, clock=time.monotonic),
        hooks=hooks,
        limits=DispatchLimits(max_attempts=2, batch_timeout_s=5.0, model="synthetic"),
        output_spec=lambda: output.spec(30, 20),
        clock=time.monotonic,
        tracer=tracer,
    )
    intake = Intake(
        consumer=lambda: cast(Any, consumer),
        ledger=ledger,
        dispatcher=dispatcher,
        writers=WriterSchemas(None),
        batcher=Batcher[Item](batch_size=4, batch_wait_s=0.0),
        limits=limits,
        hooks=hooks,
        clock=time.monotonic,
        tracer=tracer,
    )
    fetching = asyncio.create_task(intake.fetch_routine())
    try:
        async with asyncio.timeout(10):
            while not all(
                ledger.state(tp).committable == len(rs) for tp, rs in by_partition.items() if rs
            ):
                assert not fetching.done(), fetching
                await asyncio.sleep(0.001)
            await dispatcher.drain(1.0)
    finally:
        fetching.cancel()
        await asyncio.gather(fetching, return_exceptions=True)
    return output, ledger
