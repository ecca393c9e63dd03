"""Per-partition bookkeeping with out-of-order completion (pure, no I/O).

Batches finish in any order, but Kafka commits are a single number per partition: "everything
below this offset is done". One :class:`PartitionState` per partition holds all that the
consumer knows of it (offsets fetched and not yet committable, records at work, the last
commit, the base its lag is counted from), so a revoke drops one object (like the Confluent
Parallel Consumer's ``PartitionState``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class PartitionState:
    """Everything tracked for one partition."""

    pending: deque[int] = field(default_factory=deque)
    """Offsets fetched and not yet committable, in fetch order."""
    timestamps: deque[float] = field(default_factory=deque)
    """When each pending record was made (any clock), in step with ``pending``."""
    done: set[int] = field(default_factory=set)
    """Pending offsets already done (out of order)."""
    committable: int | None = None
    """The next offset after the fully done prefix."""
    last_registered: int = -1
    first_registered: int | None = None
    """The first offset fetched: where this consumer took the partition up."""
    working: int = 0
    """Records handed to a task (batch or dead letter) and not finished: what a revoke waits
    for. Records still being batched are not counted."""
    committed: int | None = None
    """The offset this consumer committed last."""
    lag_base: int | None = None
    """The group's committed offset when the partition was assigned, until a commit of ours."""

    def register(self, offset: int, timestamp: float = 0.0) -> None:
        """Record that ``offset`` (of a record made at ``timestamp``) was fetched; offsets
        must arrive increasing."""
        if offset <= self.last_registered:
            raise ValueError(f"offset {offset} registered after {self.last_registered}")
        if self.first_registered is None:
            self.first_registered = offset
        self.last_registered = offset
        self.pending.append(offset)
        self.timestamps.append(timestamp)

    def complete(self, offset: int) -> None:
        """Record that ``offset`` is fully handled (its output acknowledged)."""
        if not self.pending or offset < self.pending[0]:
            return  # a stale completion: nothing to record
        self.done.add(offset)
        while self.pending and self.pending[0] in self.done:
            head = self.pending.popleft()
            self.timestamps.popleft()
            self.done.discard(head)
            self.committable = head + 1

    def oldest_pending(self) -> float | None:
        """Timestamp of the oldest record not yet done; None when none is pending."""
        return self.timestamps[0] if self.timestamps else None

    def to_commit(self) -> int | None:
        """The offset to commit now, or None when nothing new is committable."""
        if self.committable is None or self.committable == self.committed:
            return None
        return self.committable


class OffsetTracker(Generic[K]):
    """The partition states of many partitions; keyed by any hashable partition id."""

    def __init__(self) -> None:
        self._parts: dict[K, PartitionState] = {}

    def state(self, partition: K) -> PartitionState:
        """The state of ``partition`` (created empty on first use)."""
        part = self._parts.get(partition)
        if part is None:  # not setdefault: that would build a state per call (per record)
            part = self._parts[partition] = PartitionState()
        return part

    def get(self, partition: K) -> PartitionState | None:
        """The state of ``partition`` if it is tracked."""
        return self._parts.get(partition)

    def register(self, partition: K, offset: int, timestamp: float = 0.0) -> None:
        """Record that ``offset`` (of a record made at ``timestamp``, any clock) was fetched;
        offsets of a partition must arrive increasing."""
        self.state(partition).register(offset, timestamp)

    def done(self, partition: K, offset: int) -> None:
        """Record that ``offset`` is fully handled (its output acknowledged)."""
        part = self._parts.get(partition)
        if part is not None:  # else a forgotten (revoked) partition: nothing to record
            part.complete(offset)

    def committable(self) -> dict[K, int]:
        """Offsets safe to commit: per partition, the next offset after a fully done prefix."""
        return {p: s.committable for p, s in self._parts.items() if s.committable is not None}

    def pending_count(self, partition: K | None = None) -> int:
        """Offsets fetched and not yet committable, for one partition or all."""
        parts = self._parts.values() if partition is None else [self._parts.get(partition)]
        return sum(len(p.pending) for p in parts if p is not None)

    def oldest_pending(self, partition: K) -> float | None:
        """Timestamp of the partition's oldest offset not yet done; None when none is pending."""
        part = self._parts.get(partition)
        return part.oldest_pending() if part is not None else None

    def forget(self, partition: K) -> None:
        """Drop a partition (revoked): late completions for it are ignored."""
        self._parts.pop(partition, None)

    def partitions(self) -> list[K]:
        """Partitions currently tracked."""
        return list(self._parts)
