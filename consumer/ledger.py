"""The in-flight ledger: what the consumer holds, per partition and in all (no I/O).

Every fetched record is in flight from its intake until it leaves the pipeline (its output
acknowledged, or abandoned loudly). At most ``max_in_flight`` are: at the bound the intake
pauses fetching, so memory stays flat at any lag. Per partition, a
:class:`~consumer.offsets.PartitionState` keeps the offsets to commit and the records at work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

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

    def admit(self, tp: TopicPartition, offset: int, created_s: float) -> None:
        """A fetched record (made at ``created_s``, wall clock) enters: its offset is
        pending until done."""
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
        self._set(self.in_flight + 1)

    def state(self, tp: TopicPartition) -> PartitionState:
        """The state of a partition (created on first use)."""
        return self.partitions.state(tp)

    def to_work(self, tps: Iterable[TopicPartition], delta: int = 1) -> None:
        """Records of ``tps`` are handed to a task (``delta`` 1) or taken back from one (-1)."""
        for tp in tps:
            self.partitions.state(tp).working += delta

    def done(self, tp: TopicPartition, offset: int) -> None:
        """A record's output is acknowledged: its offset may be committed."""
        self.partitions.done(tp, offset)
        self.completed += 1
        self.leave(tp)

    def leave(self, tp: TopicPartition) -> None:
        """A record at work leaves the pipeline. Without :meth:`done` its offset stays
        pending, so the partition's commits stop before it: loud (lag grows), not lost."""
        state = self.partitions.get(tp)
        if state is not None:
            state.working -= 1
        self.release(1)

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
