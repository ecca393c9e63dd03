"""Publishing molecules to the input topic: the importable API for upstream pipelines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Self

from aiokafka import AIOKafkaProducer

from schemas import MOLECULE_CODEC, Molecule
from schemas.kafka import ProducerSettings
from schemas.registry import SchemaRegistry
from schemas.registry_settings import RegistryWriterSettings
from schemas.wire import Encoder


class Publisher:
    """Sends molecules keyed by id with acks=all, optionally paced to ``rate_per_s``.

    ``async with Publisher(settings, topic="molecules") as pub: await pub.publish_all(mols)``

    With ``registry`` settings that write registry framing, molecules are in Schema
    Registry framing under subject ``<topic>-value`` (registered at start), else in Avro
    single-object encoding.
    """

    def __init__(
        self,
        kafka: ProducerSettings,
        *,
        topic: str,
        rate_per_s: float | None = None,
        max_unacked: int = 10_000,
        registry: RegistryWriterSettings | None = None,
    ) -> None:
        if rate_per_s is not None and rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        self._kafka = kafka
        self.topic = topic
        self._rate = rate_per_s
        self._unacked = asyncio.Semaphore(max_unacked)
        self._producer: AIOKafkaProducer | None = None
        self._pending: set[asyncio.Future[object]] = set()
        self._registry = (
            SchemaRegistry(registry, give_up_after_s=registry.schema_registry_timeout_s)
            if registry is not None and registry.writes_registry_framing
            else None
        )
        self._encoder = Encoder(MOLECULE_CODEC)

    async def start(self) -> None:
        """Register the molecule schema (registry framing), then connect; each bounded by
        its timeout. Nothing is left open when it fails."""
        if self._producer is not None:
            return
        try:
            if self._registry is not None:
                await self._registry.start()
                self._encoder = await Encoder.for_topic(MOLECULE_CODEC, self.topic, self._registry)
            self._producer = await self._kafka.started_producer()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Wait for every acknowledgement, then disconnect; safe twice."""
        producer, self._producer = self._producer, None
        try:
            if producer is not None:
                try:
                    await self.flush()
                finally:
                    await producer.stop()
        finally:
            if self._registry is not None:
                await self._registry.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def publish(self, molecule: Molecule) -> asyncio.Future[object]:
        """Queue one molecule; the returned future resolves when the broker acknowledges it."""
        if self._producer is None:
            raise RuntimeError("publisher is not started")
        if molecule.submitted_at is None:
            molecule = replace(molecule, submitted_at=datetime.now(UTC))
        await self._unacked.acquire()
        fut: asyncio.Future[object] = await self._producer.send(
            self.topic, value=self._encoder.encode(molecule), key=molecule.id.encode()
        )
        self._pending.add(fut)
        fut.add_done_callback(self._acked)
        return fut

    def _acked(self, fut: asyncio.Future[object]) -> None:
        self._pending.discard(fut)
        self._unacked.release()

    async def flush(self) -> None:
        """Wait until every molecule queued so far is acknowledged (raises the first error)."""
        if self._pending:
            await asyncio.gather(*list(self._pending))

    async def publish_all(
        self,
        molecules: Iterable[Molecule] | AsyncIterable[Molecule],
        *,
        on_sent: Callable[[int], None] = lambda n: None,
    ) -> int:
        """Publish all (paced when a rate is set), wait for the acks, return the count."""
        started = time.monotonic()
        count = 0

        async def each(mol: Molecule) -> None:
            nonlocal count
            if self._rate is not None:
                delay = started + count / self._rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self.publish(mol)
            count += 1
            on_sent(count)

        if isinstance(molecules, AsyncIterable):
            async for mol in molecules:
                await each(mol)
        else:
            for mol in molecules:
                await each(mol)
        await self.flush()
        return count
