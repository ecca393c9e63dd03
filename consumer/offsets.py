"""Per-partition offset tracking with out-of-order completion (pure, no I/O).

Batches finish in any order, but Kafka commits are a single number per partition: "everything
below this offset is done". The tracker keeps, per partition, the offsets fetched and not yet
committed, in fetch order, and reports the highest offset it is safe to commit. It also keeps
each pending offset's timestamp, for the age of the oldest record not yet done.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class _Partition:
    pending: deque[int] = field(default_factory=deque)
    timestamps: deque[float] = field(default_factory=deque)  # of ``pending``, in step
    done: set[int] = field(default_factory=set)
    committable: int | None = None
    last_registered: int = -1


class OffsetTracker(Generic[K]):
    """Tracks fetched offsets of many partitions; keyed by any hashable partition id."""

    def __init__(self) -> None:
        self._parts: dict[K, _Partition] = {}

    def register(self, partition: K, offset: int, timestamp: float = 0.0) -> None:
        """Record that ``offset`` (of a record made at ``timestamp``, any clock) was fetched;
        offsets of a partition must arrive increasing."""
        part = self._parts.setdefault(partition, _Partition())
        if offset <= part.last_registered:
            raise ValueError(f"offset {offset} registered after {part.last_registered}")
        part.last_registered = offset
        part.pending.append(offset)
        part.timestamps.append(timestamp)

    def done(self, partition: K, offset: int) -> None:
        """Record that ``offset`` is fully handled (its output acknowledged)."""
        part = self._parts.get(partition)
        if part is None or not part.pending or offset < part.pending[0]:
            return  # forgotten (revoked) partition or a stale completion: nothing to record
        part.done.add(offset)
        while part.pending and part.pending[0] in part.done:
            head = part.pending.popleft()
            part.timestamps.popleft()
            part.done.discard(head)
            part.committable = head + 1

    def committable(self) -> dict[K, int]:
        """Offsets to commit now: per partition, the next offset after a fully done prefix."""
        return {p: s.committable for p, s in self._parts.items() if s.committable is not None}

    def pending_count(self, partition: K | None = None) -> int:
        """Offsets fetched and not yet committable, for one partition or all."""
        parts = self._parts.values() if partition is None else [self._parts.get(partition)]
        return sum(len(p.pending) for p in parts if p is not None)

    def oldest_pending(self, partition: K) -> float | None:
        """Timestamp of the partition's oldest offset not yet done; None when none is pending."""
        part = self._parts.get(partition)
        return part.timestamps[0] if part is not None and part.timestamps else None

    def forget(self, partition: K) -> None:
        """Drop a partition (revoked): late completions for it are ignored."""
        self._parts.pop(partition, None)

    def partitions(self) -> list[K]:
        """Partitions currently tracked."""
        return list(self._parts)
