"""The in-flight ledger: what the consumer holds, per partition and in all (no I/O).

Every fetched record is in flight from its intake until it leaves the pipeline (its output
acknowledged, or abandoned loudly). At most ``max_in_flight`` are, of at most
``max_in_flight_bytes`` together: at either bound the intake pauses fetching, so memory stays
flat at any lag and any record size (one fetch may overshoot the bytes by its own size). Per
partition, a :class:`~consumer.state.offsets.PartitionState` keeps the offsets to commit and the
records at work.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import structlog
from aiokafka import TopicPartition

from consumer.state.offsets import OffsetTracker, PartitionState

log = structlog.get_logger(__name__)

Record = tuple[TopicPartition, int]
"""A record by its partition and offset."""


class Ledger:
    """Counts records in flight and keeps the partition states; wakes waiters on changes."""

    def __init__(
        self,
        max_in_flight: int,
        max_in_flight_bytes: int = 2**62,
        *,
        on_in_flight: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.max_in_flight_bytes = max_in_flight_bytes
        self.partitions: OffsetTracker[TopicPartition] = OffsetTracker()
        self.in_flight = 0
        self.in_flight_bytes = 0
        # Per record in flight: its size, kept apart from the partition states because a
        # revoked partition's records still leave (and free their bytes) after it is forgotten.
        self._sizes: dict[Record, int] = {}
        self.completed = 0
        """Records done since start (their output acknowledged)."""
        self.room = asyncio.Event()
        """Set while there is room for one more record."""
        self.room.set()
        self.progress = asyncio.Event()
        """Set whenever a record leaves or a task ends: drains wait on it."""
        self._on_in_flight = on_in_flight

    @property
    def full(self) -> bool:
        """Whether the in-flight window is full, in records or bytes (fetching pauses)."""
        return (
            self.in_flight >= self.max_in_flight or self.in_flight_bytes >= self.max_in_flight_bytes
        )

    def admit(self, tp: TopicPartition, records: Sequence[tuple[int, float, int]]) -> None:
        """Fetched records of a partition (offset, made at: wall clock, size in bytes) enter:
        their offsets are pending until done."""
        for offset, created_s, size in records:
            self._register(tp, offset, created_s)
            # Summed: an offset reset may re-admit an offset whose old record is still out.
            self._sizes[(tp, offset)] = self._sizes.get((tp, offset), 0) + size
            self.in_flight_bytes += size
        self._set(self.in_flight + len(records))

    def _register(self, tp: TopicPartition, offset: int, created_s: float) -> None:
        state = self.partitions.state(tp)
        try:
            state.register(offset, created_s)
        except ValueError:
            # The position moved back (an offset reset after log truncation): start the
            # partition's bookkeeping afresh; late completions of the old range are ignored.
            log.warning(
                "offsets moved back, tracking afresh",
                topic=tp.topic,
                partition=tp.partition,
                offset=offset,
            )
            self.partitions.forget(tp)
            self.partitions.register(tp, offset, created_s)

    def state(self, tp: TopicPartition) -> PartitionState:
        """The state of a partition (created on first use)."""
        return self.partitions.state(tp)

    def to_work(self, counts: Mapping[TopicPartition, int], sign: int = 1) -> None:
        """``counts`` records per partition are handed to a task (``sign`` 1) or taken back
        from one (-1)."""
        for tp, count in counts.items():
            # Taken back after a revoke: the partition is forgotten, keep it so.
            state = self.partitions.state(tp) if sign > 0 else self.partitions.get(tp)
            if state is not None:
                state.working += sign * count

    def done(self, records: Iterable[Record]) -> None:
        """Records' outputs are acknowledged (one batch's, say): their offsets may be
        committed."""
        records = list(records)
        for tp, offset in records:
            self.partitions.done(tp, offset)
        self.completed += len(records)
        self.leave(records)

    def leave(self, records: Iterable[Record]) -> None:
        """Records at work leave the pipeline. Without :meth:`done` their offsets stay
        pending, so the partition's commits stop before them: loud (lag grows), not lost."""
        records = list(records)
        for tp, count in Counter(tp for tp, _ in records).items():
            state = self.partitions.get(tp)
            if state is not None:
                state.working -= count
        self.release(records)

    def release(self, records: Iterable[Record]) -> None:
        """Records not at work leave (withdrawn, or dropped with a revoke): they were never
        produced, so their offsets stay pending for the next owner to read."""
        count = 0
        for record in records:
            self.in_flight_bytes -= self._sizes.pop(record, 0)
            count += 1
        if count:
            self._set(self.in_flight - count)
            self.progress.set()

    def working(self, partitions: Iterable[TopicPartition]) -> bool:
        """Whether any record of ``partitions`` is at work."""
        states = (self.partitions.get(tp) for tp in partitions)
        return any(s is not None and s.working > 0 for s in states)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop revoked partitions: one state object each."""
        for tp in partitions:
            self.partitions.forget(tp)

    def _set(self, count: int) -> None:
        self.in_flight = count
        if not self.full:
            self.room.set()
        else:
            self.room.clear()
        self._on_in_flight(count)
