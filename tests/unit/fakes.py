"""Small in-memory stand-ins for the consumer's collaborators (never for an integration test):
a Kafka consumer that serves queued records, a pool whose replicas compute in-process, an
output that records what it was given, a registry, a clock the test moves. With them the data
path's steps run in milliseconds; a gated pool and output, a registry and a clock that move
only when told let a test make an interleaving happen on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from aiokafka import ConsumerRebalanceListener, TopicPartition

from consumer.dispatch import Dispatcher
from consumer.errors import WorkerLostError
from consumer.hooks import Hooks
from consumer.input_settings import RecordLimits
from consumer.intake.fetch_loop import Intake
from consumer.pipeline import Pipeline, Wiring
from consumer.pool.model_actor import ModelWorker
from consumer.pool.occupancy import Occupancy
from consumer.pool.replica import Replica, ReplicaState
from consumer.pool.slots import Slots
from consumer.reasons import DeadLetterStage
from consumer.settings import ConsumerSettings
from consumer.state.items import DeadLetter
from consumer.state.ledger import Ledger
from consumer.state.throughput import Throughput
from consumer.state.work_messages import OutputSpec, Produced, WorkRequest, WorkResult, pack, unpack
from schemas import MOLECULE_CODEC, Molecule
from schemas.framing import SchemaRef

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
    """Serves queued records per partition, ``max_records`` at a time; an empty fetch waits
    (long poll) until records are added or a partition resumes, or its timeout. Commits are
    kept; queued errors make the next fetches or commits fail; ``answered`` hears each
    commit and end-offsets call in the very step it returns. End offsets are the records
    added so far. :meth:`rebalance` calls a listener as aiokafka does. Records put in
    ``slipped`` come with the next fetch, paused or not (a fetch that was out when its
    partition paused)."""

    def __init__(self, records: dict[TopicPartition, list[Record]]) -> None:
        self._queued = {tp: list(rs) for tp, rs in records.items()}
        self._ends = {tp: rs[-1].offset + 1 if rs else 0 for tp, rs in records.items()}
        self._arrived = asyncio.Event()
        self.paused: set[TopicPartition] = set()
        self.commits: list[dict[TopicPartition, int]] = []
        self.fetch_errors: list[Exception] = []
        self.commit_errors: list[Exception] = []
        self.slipped: dict[TopicPartition, list[Record]] = {}
        self.stopped = False
        self.answered: Callable[[str], None] = lambda call: None

    def add(self, tp: TopicPartition, records: Sequence[Record]) -> None:
        """More records arrive on ``tp``."""
        self._queued.setdefault(tp, []).extend(records)
        if records:
            self._ends[tp] = records[-1].offset + 1
        self._arrived.set()

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        if self.fetch_errors:
            raise self.fetch_errors.pop(0)
        if self.slipped:
            slipped, self.slipped = self.slipped, {}
            for tp in slipped:
                self._queued.setdefault(tp, [])
            await asyncio.sleep(0)
            return slipped
        fetched = self._take(max_records)
        if fetched:
            await asyncio.sleep(0)
            return fetched
        # As a broker would: an empty fetch waits (else the intake spins), until records come.
        self._arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), timeout_ms / 1000)
        return self._take(max_records)

    def _take(self, max_records: int) -> dict[TopicPartition, Any]:
        fetched: dict[TopicPartition, Any] = {}
        for tp, queue in self._queued.items():
            if tp in self.paused or not queue or max_records <= 0:
                continue
            fetched[tp], self._queued[tp] = queue[:max_records], queue[max_records:]
            max_records -= len(fetched[tp])
        return fetched

    def assignment(self) -> set[TopicPartition]:
        return set(self._queued)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)
        self._arrived.set()

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.commit_errors:
            raise self.commit_errors.pop(0)
        self.commits.append(dict(offsets))
        self.answered("commit")

    async def stop(self) -> None:
        """Leave the group."""
        self.stopped = True

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        self.answered("end_offsets")
        return {tp: self._ends.get(tp, 0) for tp in tps}

    def highwater(self, tp: TopicPartition) -> int | None:
        return self._ends.get(tp)

    async def committed(self, tp: TopicPartition) -> int | None:
        return None  # the group has committed nothing before this consumer

    async def beginning_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 0)

    async def rebalance(
        self,
        listener: ConsumerRebalanceListener,
        revoked: Collection[TopicPartition] = (),
        assigned: Collection[TopicPartition] = (),
    ) -> None:
        """As aiokafka: the revoke runs while the partitions are still assigned, then the
        assignment changes, then the new partitions are announced."""
        await listener.on_partitions_revoked(set(revoked))
        for tp in revoked:
            del self._queued[tp]
        self.paused -= set(revoked)
        for tp in assigned:
            self._queued.setdefault(tp, [])
        await listener.on_partitions_assigned(set(assigned))


@dataclass(eq=False)
class Call:
    """One try of a batch on a gated :class:`InProcessPool`, answered when the test says."""

    request: WorkRequest
    replica: Replica
    worker: ModelWorker
    answer: asyncio.Future[WorkResult]

    def succeed(self) -> None:
        """The worker computes the batch."""
        self.answer.set_result(unpack(self.worker.process(pack(self.request)), WorkResult))

    def fail(self, error: Exception) -> None:
        """The try raises ``error`` (a lost worker, a failed batch)."""
        self.answer.set_exception(error)


class InProcessPool:
    """Replicas of ``slots`` slots whose worker (the real actor class, not in Ray) computes
    each batch here, its request and result crossing as bytes as they would to an actor.
    Gated, each try waits as a :class:`Call` until the test answers it. A lost replica is
    replaced (at once, or when the test calls :meth:`deploy`, as a replacement becomes ready
    when Ray places it) and its slot is never given back."""

    def __init__(
        self,
        worker: ModelWorker | None = None,
        *,
        gated: bool = False,
        slots: int = 64,
        replace_lost: bool = True,
    ) -> None:
        self.worker = worker or ModelWorker("fake-worker", "synthetic", {})
        self.gated = gated
        self.replace_lost = replace_lost
        self.calls: asyncio.Queue[Call] = asyncio.Queue()
        self.tries = 0
        self._slots_each = slots
        self._free = Slots()
        self._names = itertools.count(1)
        self.replica = self.deploy()
        self.target = 1
        """The size the autoscaler last set (the replicas computing do not follow it)."""

    def deploy(self) -> Replica:
        """A new replica is ready, its slots free."""
        replica = Replica(f"fake-worker-{next(self._names)}", None, 0.0, slots=self._slots_each)
        replica.state = ReplicaState.READY
        for _ in range(replica.slots):
            self._free.put(replica)
        return replica

    async def acquire(self) -> Replica:
        return await self._free.take()

    def release(self, replica: Replica) -> None:
        replica.busy -= 1
        self._free.put(replica)

    def resize(self, target: int) -> None:
        self.target = target

    def counts(self) -> Counter[ReplicaState]:
        return Counter({ReplicaState.READY: self.target})

    def occupancy(self) -> Occupancy:
        return Occupancy(self.replica.busy, self._free.waiting, self._slots_each)

    def startup_s(self) -> float | None:
        return None

    def worker_seconds(self) -> float:
        return 0.0

    async def next_call(self) -> Call:
        """The next try that reaches a replica (bounded: 2 s)."""
        return await asyncio.wait_for(self.calls.get(), 2.0)

    async def process(
        self, replica: Replica, request: WorkRequest, *, timeout_s: float
    ) -> WorkResult:
        self.tries += 1
        if not self.gated:
            return unpack(self.worker.process(pack(request)), WorkResult)
        call = Call(request, replica, self.worker, asyncio.get_running_loop().create_future())
        self.calls.put_nowait(call)
        try:
            return await call.answer
        except WorkerLostError:
            replica.state = ReplicaState.DEAD
            if self.replace_lost:
                self.replica = self.deploy()
            raise


@dataclass
class RecordingOutput:
    """Acknowledges everything and keeps it: at once, or once ``acks`` is set. An error
    queued in ``refusals`` refuses the next send of predictions or dead letters."""

    partitions: tuple[int, ...] = (0, 1)
    predicted: list[Produced] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    refusals: list[Exception] = field(default_factory=list)
    acks: asyncio.Event | None = None

    def predicted_keys(self) -> list[bytes]:
        """The keys of the predictions acknowledged, sorted (see :func:`keys`)."""
        return sorted(key for key, _, _ in self.predicted)

    async def spec(self, max_smiles_length: int, max_id_length: int) -> OutputSpec:
        return OutputSpec(self.partitions, None, max_smiles_length, max_id_length)

    async def predictions(self, produced: dict[int, Sequence[Produced]]) -> None:
        await self._acknowledged()
        for records in produced.values():
            self.predicted.extend(records)

    async def dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        await self._acknowledged()
        self.letters.extend(letters)

    async def _acknowledged(self) -> None:
        if self.acks is not None:
            await self.acks.wait()
        if self.refusals:
            raise self.refusals.pop(0)


@dataclass
class FakeCapacity:
    """This consumer's share of the capacity request, as :class:`CapacityClient` sends it;
    an error queued in ``errors`` fails the next call."""

    requests: list[int] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    started: bool = False
    withdrawn: bool = False

    async def start(self) -> None:
        self.started = True

    async def request(self, count: int) -> None:
        self._fail()
        self.requests.append(count)

    async def stop(self) -> None:
        self._fail()
        self.withdrawn = True

    def _fail(self) -> None:
        if self.errors:
            raise self.errors.pop(0)


class ManualClock:
    """A monotonic clock that moves only when the test moves it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingHooks(Hooks):
    """Keeps what the steps tell through the hooks that the step tests read."""

    def __init__(self) -> None:
        self.retries = 0
        self.broker_errors: list[str] = []
        self.revoked_partitions: list[list[tuple[str, int]]] = []
        self.committed_count = 0
        self.dead_letter_stages: list[DeadLetterStage] = []
        self.pool_states: list[tuple[dict[str, int], int]] = []
        self.on_in_flight: Callable[[int], None] = lambda count: None
        """Called in the very step the ledger's count changes."""

    def in_flight(self, count: int) -> None:
        self.on_in_flight(count)

    def retry(self) -> None:
        self.retries += 1

    def broker_error(self, operation: str) -> None:
        self.broker_errors.append(operation)

    def revoked(self, partitions: list[tuple[str, int]]) -> None:
        self.revoked_partitions.append(partitions)

    def committed(self, count: int) -> None:
        self.committed_count += count

    def dead_letter(self, stage: DeadLetterStage) -> None:
        self.dead_letter_stages.append(stage)

    def pool_state(self, by_state: dict[str, int], desired: int, worker_seconds: float) -> None:
        self.pool_states.append((by_state, desired))


class FakeRegistry:
    """A Schema Registry whose schemas arrive when the test publishes them; a lookup of one
    not published yet waits until then."""

    def __init__(self) -> None:
        self._schemas: dict[SchemaRef, dict[str, Any]] = {}
        self._published: dict[SchemaRef, asyncio.Event] = {}
        self.lookups: list[SchemaRef] = []

    def cached(self, ref: SchemaRef) -> dict[str, Any] | None:
        return self._schemas.get(ref)

    async def writer_schema(self, ref: SchemaRef) -> dict[str, Any]:
        self.lookups.append(ref)
        await self._published.setdefault(ref, asyncio.Event()).wait()
        return self._schemas[ref]

    def publish(self, ref: SchemaRef, schema: dict[str, Any]) -> None:
        self._schemas[ref] = schema
        self._published.setdefault(ref, asyncio.Event()).set()


STEP_SETTINGS: dict[str, Any] = {
    "model": "synthetic",
    "batch_size": 4,
    "batch_wait_ms": 0.0,
    "max_in_flight": 16,
    "max_attempts": 2,
    "batch_timeout_s": 5.0,
    "shutdown_timeout_s": 5.0,
    "broker_timeout_s": 1.0,
}
"""The settings the step tests start from: small batches, sent at once, a small window."""


@dataclass
class Steps:
    """The real steps of one consumer (:meth:`Pipeline.build` over a :class:`Wiring`), their
    collaborators faked."""

    consumer: FakeConsumer
    pool: InProcessPool
    output: RecordingOutput
    ledger: Ledger
    hooks: RecordingHooks
    clock: Callable[[], float]
    pipeline: Pipeline

    @classmethod
    def build(
        cls,
        records: dict[TopicPartition, list[Record]] | None = None,
        *,
        pool: InProcessPool | None = None,
        registry: FakeRegistry | None = None,
        clock: Callable[[], float] | None = None,
        tracer: Tracer | None = None,
        **settings: Any,
    ) -> Steps:
        """The steps over the fakes, ``settings`` over :data:`STEP_SETTINGS`."""
        s = ConsumerSettings(**{**STEP_SETTINGS, **settings})
        consumer, output, hooks = FakeConsumer(records or {}), RecordingOutput(), RecordingHooks()
        ledger = Ledger(s.max_in_flight, s.max_in_flight_bytes, on_in_flight=hooks.in_flight)
        clock = clock or ManualClock()
        wiring = Wiring(
            settings=s,
            consumer=lambda: cast(Any, consumer),
            ledger=ledger,
            pool=cast(Any, pool or InProcessPool()),
            output=cast(Any, output),
            registry=cast(Any, registry),
            throughput=Throughput(completed=lambda: ledger.completed, clock=clock),
            hooks=hooks,
            clock=clock,
            tracer=tracer,
        )
        pool = cast(InProcessPool, wiring.pool)
        return cls(consumer, pool, output, ledger, hooks, clock, Pipeline.build(wiring))

    @property
    def dispatcher(self) -> Dispatcher:
        return self.pipeline.dispatcher

    @property
    def intake(self) -> Intake:
        return self.pipeline.intake

    async def revoke(self, *tps: TopicPartition) -> None:
        """A rebalance takes ``tps`` from this consumer."""
        await self.consumer.rebalance(self.pipeline.listener, revoked=tps)

    @contextlib.asynccontextmanager
    async def fetching(self) -> AsyncIterator[None]:
        """The fetch routine runs inside (a crash of it fails the test); at the end it
        stops and whatever still runs is cancelled."""
        routine = asyncio.create_task(self.intake.fetch_routine())
        try:
            yield
        finally:
            routine.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await routine
            await self.dispatcher.drain(0.0)


def molecules(count: int, start: int = 0) -> list[Record]:
    """``count`` valid molecule records from offset ``start`` on, keyed by :func:`keys`."""
    offsets = range(start, start + count)
    return [
        Record(offset, key, MOLECULE_CODEC.encode(Molecule(key.decode(), "CCO")))
        for offset, key in zip(offsets, keys(offsets), strict=True)
    ]


def keys(offsets: Iterable[int]) -> list[bytes]:
    """The keys (and molecule ids, so prediction keys) of :func:`molecules` records at
    ``offsets``, sorted."""
    return sorted(f"m{offset:04d}".encode() for offset in offsets)


async def until(condition: Callable[[], bool], bound_s: float = 2.0) -> None:
    """Let the event loop run until ``condition`` holds (bounded; fails past the bound)."""
    async with asyncio.timeout(bound_s):
        while not condition():
            await asyncio.sleep(0)


async def run_pipeline(
    by_partition: dict[TopicPartition, list[Record]],
    limits: RecordLimits,
    *,
    pool: InProcessPool | None = None,
    tracer: Tracer | None = None,
) -> tuple[RecordingOutput, Ledger]:
    """Run the real intake, dispatch and sink over the fakes until every record of
    ``by_partition`` is done (bounded: 10 s), then drain."""
    steps = Steps.build(
        by_partition,
        pool=pool,
        clock=time.monotonic,
        tracer=tracer,
        max_in_flight_bytes=max(2000, limits.max_record_bytes),
        max_record_bytes=limits.max_record_bytes,
        max_id_length=limits.max_key_bytes,
        max_header_count=limits.max_header_count,
        max_header_bytes=limits.max_header_bytes,
        max_smiles_length=30,
    )
    ledger = steps.ledger
    fetching = asyncio.create_task(steps.intake.fetch_routine())
    try:
        async with asyncio.timeout(10):
            while not all(
                ledger.state(tp).committable == len(rs) for tp, rs in by_partition.items() if rs
            ):
                assert not fetching.done(), fetching
                await asyncio.sleep(0.001)
            await steps.dispatcher.drain(1.0)
    finally:
        fetching.cancel()
        await asyncio.gather(fetching, return_exceptions=True)
    return steps.output, ledger
