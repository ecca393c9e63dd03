"""Getting past records aiokafka cannot read, without losing the ones around them.

When aiokafka's record parser raises (a header key that is not UTF-8 raises
``UnicodeDecodeError``, a CRC mismatch ``CorruptRecordException``), it raises out of
``getmany`` and its fetcher is left like this (aiokafka 0.14, ``fetcher.py``):

- the failing partition's position has not moved: the records it parsed before the bad one in
  that call are not returned, and the next fetch re-reads the same batch and fails again, so
  the partition is stuck until the consumer seeks past the batch;
- partitions drained earlier in the same ``getmany`` call have had their positions moved past
  records that were never returned: they would be lost without a seek back.

So recovery, run on any exception out of ``getmany`` but the broker's own:

1. seeks every assigned partition whose position is past the last offset the ledger took in
   back to the offset after it (the group's committed offset when it took none), so the
   records dropped with the exception are fetched again (no duplicate: none of them was
   taken in);
2. fetches every fetchable partition at its position with a raw Fetch request through the
   consumer's own client (the same bytes the fetcher got) and lets
   :func:`consumer.intake.unreadable.recover` find where aiokafka fails, what the failed batch holds
   and where it ends;
3. seeks each failed partition to the end of its failed batch; its records are returned to be
   taken in or dead-lettered (stage ``fetch``), so every offset ends as a prediction or a dead
   letter and the commit moves past it.

The other partitions flow again from the next ``getmany``. A recovery that cannot fetch (the
broker is away) or finds nothing to get past is logged and retried after a backoff that doubles
up to 5 s: the next ``getmany`` fails the same way while the cause is there.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.fetcher import READ_COMMITTED
from aiokafka.errors import KafkaError
from aiokafka.protocol.fetch import FetchRequest

from consumer.intake.unreadable import Recovered, recover
from consumer.state.ledger import Ledger

log = structlog.get_logger(__name__)

T = TypeVar("T")

BACKOFF_S = 0.1
"""First wait after a recovery that could not get past anything; it doubles up to 5 s."""
CALL_TIMEOUT_S = 10.0
"""Bound of each broker call of a recovery."""
FETCH_WAIT_MS = 500
"""How long the broker may wait for data (Tansu answers a wait of 0 with no data at all)."""
FETCH_MAX_BYTES = 1024 * 1024
"""Per partition: aiokafka's default ``max_partition_fetch_bytes`` (a whole batch comes
back even when larger)."""


class FetchRecovery:
    """Recoveries of one consumer's intake; the backoff grows while they get nowhere."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        isolation_level: int = READ_COMMITTED,
    ) -> None:
        self._ledger = ledger
        self._sleep = sleep
        self._isolation_level = isolation_level
        self._backoff_s = BACKOFF_S
        self.attempts = 0
        """Recoveries in a row that got past nothing."""

    async def recover(self, consumer: AIOKafkaConsumer, error: Exception) -> list[Recovered]:
        """Get past what made ``getmany`` raise ``error``: the partitions' records up to the
        end of their failed batches (already sought past), or nothing after a backoff."""
        try:
            await self._seek_back(consumer)
            found = await self._find(consumer)
        except (KafkaError, OSError, TimeoutError) as exc:
            return await self._retry(error, f"fetch failed: {type(exc).__name__}: {exc}")
        # A rebalance may have taken partitions meanwhile: the new owner reads them.
        found = [r for r in found if r.tp in consumer.assignment()]
        if not found:
            return await self._retry(error, "every partition reads fine at its position")
        for recovered in found:
            consumer.seek(recovered.tp, recovered.resume_at)
            log.warning(
                "moved past unreadable records",
                topic=recovered.tp.topic,
                partition=recovered.tp.partition,
                resume_at=recovered.resume_at,
                dead_letters=[d.offset for d in recovered.letters],
                taken=len(recovered.records),
                error=recovered.failure,
            )
        self._backoff_s, self.attempts = BACKOFF_S, 0
        return found

    async def _retry(self, error: Exception, why: str) -> list[Recovered]:
        self.attempts += 1
        log.warning(
            "fetched records unreadable, not got past yet; will retry",
            error=f"{type(error).__name__}: {error}",
            why=why,
            attempt=self.attempts,
            retry_in_s=self._backoff_s,
        )
        await self._sleep(self._backoff_s)
        self._backoff_s = min(5.0, self._backoff_s * 2)
        return []

    async def _seek_back(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            state = self._ledger.partitions.get(tp)
            if state is not None and state.last_registered >= 0:
                expected = state.last_registered + 1
            else:
                expected = await _bounded(consumer.committed(tp))
                if expected is None:
                    expected = (await _bounded(consumer.beginning_offsets([tp])))[tp]
            position = await _bounded(consumer.position(tp))
            if position > expected:
                log.warning(
                    "records dropped by the failed fetch, fetching them again",
                    topic=tp.topic,
                    partition=tp.partition,
                    offset=expected,
                    was=position,
                )
                consumer.seek(tp, expected)

    async def _find(self, consumer: AIOKafkaConsumer) -> list[Recovered]:
        """Raw-fetch the fetchable partitions at their positions; where aiokafka fails."""
        # The consumer's own client: its connections, metadata and negotiated versions.
        client = consumer._client
        by_node: dict[int, list[tuple[TopicPartition, int]]] = defaultdict(list)
        paused = consumer.paused()
        for tp in consumer.assignment() - paused:
            node = client.cluster.leader_for_partition(tp)
            if node is None or node < 0:
                raise KafkaError(f"no leader known for {tp}")
            by_node[node].append((tp, await _bounded(consumer.position(tp))))
        found = []
        for node, partitions in by_node.items():
            found.extend(await self._fetch(client, node, dict(partitions)))
        return found

    async def _fetch(
        self, client: Any, node: int, at: dict[TopicPartition, int]
    ) -> list[Recovered]:
        topics: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for tp, offset in at.items():
            topics[tp.topic].append((tp.partition, offset, FETCH_MAX_BYTES))
        request = FetchRequest(
            FETCH_WAIT_MS, 1, FETCH_MAX_BYTES * len(at), self._isolation_level, list(topics.items())
        )
        response = await _bounded(client.send(node, request))
        found = []
        for topic, partitions in response.topics:
            for partition, error_code, _, *data in partitions:
                tp = TopicPartition(topic, partition)
                if error_code or tp not in at:
                    continue  # the fetcher sees (and handles) the broker's errors itself
                # Aborted transactions: part 2 from v11 on, the one before the records else.
                aborted = data[2] if response.API_VERSION >= 11 else data[-2]
                if response.API_VERSION < 4:
                    aborted = None
                recovered = recover(tp, data[-1] or b"", at[tp], aborted, self._isolation_level)
                if recovered is not None:
                    found.append(recovered)
        return found


async def _bounded(call: Awaitable[T]) -> T:
    async with asyncio.timeout(CALL_TIMEOUT_S):
        return await call
