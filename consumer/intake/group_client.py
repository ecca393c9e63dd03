"""Connecting to the brokers: the group consumer's client, and retries while they are away
(never when they refuse the login: that ends the process)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from consumer.settings import ConsumerSettings
from schemas.kafka import KafkaSettings
from schemas.kafka_refusals import is_refusal, raise_if_refused

log = structlog.get_logger(__name__)


def group_consumer(settings: ConsumerSettings) -> AIOKafkaConsumer:
    """The input topic's consumer: manual commits, the group timing of the settings."""
    return AIOKafkaConsumer(
        **settings.client_kwargs(),
        group_id=settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # Records of aborted transactions upstream are never read (Kafka's default reads them).
        isolation_level="read_committed",
        max_poll_records=settings.max_in_flight,
        fetch_max_wait_ms=settings.fetch_wait_ms,
        fetch_max_bytes=settings.fetch_max_bytes,
        max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
        session_timeout_ms=int(settings.session_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval_s * 1000),
        max_poll_interval_ms=int(settings.max_poll_interval_s * 1000),
        rebalance_timeout_ms=int(settings.rebalance_timeout_s * 1000),
        group_instance_id=settings.group_instance_id,
    )


async def until_connected(
    what: str,
    connect: Callable[[], Awaitable[None]],
    *,
    kafka: KafkaSettings,
    on_error: Callable[[str], None],
    on_attempt: Callable[[], None],
) -> None:
    """Retry ``connect`` with backoff while the broker is unreachable (logged, counted);
    raise :class:`~schemas.kafka_refusals.KafkaAuthError` at once if it refuses the login."""
    backoff_s = 0.5
    while True:
        on_attempt()
        try:
            await connect()
            return
        except Exception as exc:
            if not isinstance(exc, KafkaError | OSError | TimeoutError) and not is_refusal(exc):
                raise
            await raise_if_refused(kafka, exc)
            log.warning(
                "broker unreachable, will retry",
                client=what,
                bootstrap_servers=kafka.bootstrap_servers,
                error=f"{type(exc).__name__}: {exc}",
                retry_in_s=backoff_s,
            )
            on_error("connect")
            await asyncio.sleep(backoff_s)
            backoff_s = min(30.0, backoff_s * 2)
