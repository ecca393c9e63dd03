"""The free slots of a pool's replicas, and the batches waiting for one.

One entry per free slot, in the order they became free: a batch takes the first, so work
starts on the first replica Ray places and spreads to each one that arrives later. Entries of
a replica gone or draining since are stale and skipped. How many batches wait tells the
autoscaler that work is queued behind busy workers, whatever the lag reads.
"""

from __future__ import annotations

import asyncio

from consumer.replica import Replica, ReplicaState


class Slots:
    """Free slots (one entry each) and a count of the batches waiting for one."""

    def __init__(self) -> None:
        self._free: asyncio.Queue[Replica] = asyncio.Queue()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Batches waiting for a free slot now."""
        return self._waiting

    def put(self, replica: Replica) -> None:
        """One slot of ``replica`` is free."""
        self._free.put_nowait(replica)

    async def take(self) -> Replica:
        """Wait for a free slot of a ready or busy replica and take it."""
        self._waiting += 1
        try:
            while True:
                replica = await self._free.get()
                if replica.state in (ReplicaState.READY, ReplicaState.BUSY):
                    replica.busy += 1
                    replica.state = ReplicaState.BUSY
                    return replica
        finally:
            self._waiting -= 1
