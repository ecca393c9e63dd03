"""The outbox: predictions of concurrent batches coalesced into one send per output partition.

aiokafka sends at most one record batch per partition in a produce request and waits for its
answer before the next, so many small record batches (one per dispatched batch and
partition) cap the throughput at a few records per round trip. Here, while a partition's send
is out, everything that arrives for it waits and leaves together in the next one (Nagle's
rule): batches grow with the load and leave at once when the stream is quiet. No I/O of its
own: ``send`` is the producer's, one partition at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

from consumer.errors import PublishRejectedError
from consumer.state.work_messages import Produced

Send = Callable[[int, list[Produced]], Awaitable[None]]
"""Send records to a partition; return when acknowledged, raise
:class:`~consumer.errors.PublishRejectedError` for records refused for good."""


class Outbox:
    """Collects records per partition; one send routine per partition runs while any wait."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._waiting: dict[int, list[tuple[list[Produced], _Put]]] = {}
        self._routines: dict[int, asyncio.Task[None]] = {}

    async def put(self, produced: Mapping[int, Sequence[Produced]]) -> None:
        """Send ``produced`` with whatever else is waiting; returns when all of it is
        acknowledged. Raises :class:`PublishRejectedError` if any of its records was
        refused (records of other callers in the same send are not affected)."""
        parts = [(p, records) for p, records in produced.items() if records]
        if not parts:
            return
        # One future for the caller, however many partitions: no gather per batch.
        put = _Put(asyncio.get_running_loop().create_future(), len(parts))
        for partition, records in parts:
            self._waiting.setdefault(partition, []).append((list(records), put))
            if partition not in self._routines:
                self._routines[partition] = asyncio.create_task(self._send_routine(partition))
        await put.future

    async def stop(self) -> None:
        """Cancel the sends still out (their callers get the cancellation); safe twice."""
        routines, self._routines = list(self._routines.values()), {}
        for task in routines:
            task.cancel()
        await asyncio.gather(*routines, return_exceptions=True)
        for entries in self._waiting.values():
            for _, put in entries:
                put.future.cancel()
        self._waiting.clear()

    async def _send_routine(self, partition: int) -> None:
        entries: list[tuple[list[Produced], _Put]] = []
        try:
            while entries := self._waiting.pop(partition, []):
                await self._send_together(partition, entries)
        except asyncio.CancelledError:
            for _, put in entries:
                put.future.cancel()
            raise
        finally:
            if self._routines.get(partition) is asyncio.current_task():
                del self._routines[partition]

    async def _send_together(
        self, partition: int, entries: list[tuple[list[Produced], _Put]]
    ) -> None:
        try:
            await self._send(partition, [r for records, _ in entries for r in records])
        except PublishRejectedError as exc:
            # The refused records name their callers (the send reports the very objects);
            # refusals it cannot attribute fail everyone: never report a refused record sent.
            mine = [_refused(records, exc) for records, _ in entries]
            attributed = sum(map(len, mine)) == len(exc.rejected)
            for (_, put), refused in zip(entries, mine, strict=True):
                if refused or not attributed:
                    put.settle(PublishRejectedError(refused or exc.rejected))
                else:
                    put.settle(None)
            return
        except Exception as exc:  # e.g. the producer stopped: every caller learns it
            for _, put in entries:
                put.settle(exc)
            return
        for _, put in entries:
            put.settle(None)


class _Put:
    """One caller's records over its partitions: its future ends when every partition's
    send has, with the first error any of them met."""

    __slots__ = ("error", "future", "pending")

    def __init__(self, future: asyncio.Future[None], partitions: int) -> None:
        self.future = future
        self.pending = partitions
        self.error: BaseException | None = None

    def settle(self, error: BaseException | None) -> None:
        """One partition's send ended (``error`` None: acknowledged)."""
        # A caller cancelled meanwhile (a drain past its deadline) has its future done
        # already; its records were sent all the same.
        if self.future.done():
            return
        self.error = self.error or error
        self.pending -= 1
        if self.pending:
            return
        if self.error is None:
            self.future.set_result(None)
        else:
            self.future.set_exception(self.error)


def _refused(records: list[Produced], exc: PublishRejectedError) -> list[tuple[object, Exception]]:
    ids = {id(r) for r in records}
    return [(message, error) for message, error in exc.rejected if id(message) in ids]
