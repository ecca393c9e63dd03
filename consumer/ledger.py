"""The in-flight ledger: what the consumer holds, per partition and in all (no I/O).

Every fetched record is in flight from its intake until it leaves the pipeline (its output
acknowledged, or abandoned loudly). At most ``max_in_flight`` are: at the bound the intake
pauses fetching, so memory stays flat at any lag. Per partition, a
:class:`~consumer.offsets.PartitionState` keeps the offsets to commit and the records at work.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import structlog
from aiokafka import TopicPartition

from consumer.offsets import OffsetTracker, PartitionState

log = structlog.get_logger(__name__)


class Ledger:
    """Counts records in flight and keeps the partition states; wakes waiters on changes."""

    def __init__(
        self, *, max_in_flight: int, on_in_flight: Callable[[int], None] = lambda n: None
    ) -> None:
        self.max_in_flight = max_in_flight
        self.partitions: OffsetTracker[TopicPartition] = OffsetTracker()
        self.in_flight = 0
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
        """Whether the in-flight window is full (fetching pauses)."""
        return self.in_flight >= self.max_in_flight

    def admit(self, tp: TopicPartition, records: Sequence[tuple[int, float]]) -> None:
        """Fetched records of a partition (offset, made at: wall clock) enter: their offsets
        are pending until done."""
        for offset, created_s in records:
            self._register(tp, offset, created_s)
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

    def done(self, records: Iterable[tuple[TopicPartition, int]]) -> None:
        """Records' outputs are acknowledged (one batch's, say): their offsets may be
        committed."""
        left: Counter[TopicPartition] = Counter()
        for tp, offset in records:
            self.partitions.done(tp, offset)
            left[tp] += 1
        self.completed += left.total()
        self.leave(left)

    def leave(self, counts: Mapping[TopicPartition, int]) -> None:
        """Records at work leave the pipeline. Without :meth:`done` their offsets stay
        pending, so the partition's commits stop before them: loud (lag grows), not lost."""
        for tp, count in counts.items():
            state = self.partitions.get(tp)
            if state is not None:
                state.working -= count
        self.release(sum(counts.values()))

    def release(self, count: int) -> None:
        """``count`` records not at work leave (withdrawn, or dropped with a revoke): they
        were never produced, so their offsets stay pending for the next owner to read."""
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
        if count < self.max_in_flight:
            self.room.set()
        else:
            self.room.clear()
        self._on_in_flight(count)
