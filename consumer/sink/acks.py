"""Sending until the broker acknowledges: what fails for a while is sent again with backoff,
what is refused for good is raised, all together, at the end."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from aiokafka.errors import KafkaError, KafkaTimeoutError

from consumer.errors import PublishRejectedError
from schemas.kafka_refusals import is_refusal

R = TypeVar("R")
Enqueue = Callable[[], Awaitable["asyncio.Future[Any]"]]
"""Queue a unit of records with the producer; its future resolves on the broker's ack."""


def transient(exc: BaseException) -> bool:
    """Whether a send that failed with ``exc`` may succeed later."""
    # aiokafka marks KafkaTimeoutError (a batch expired while the broker was away) as not
    # retriable, but for us it is: the broker may come back.
    return isinstance(exc, TimeoutError | KafkaTimeoutError) or bool(
        getattr(exc, "retriable", False)
    )


class UntilAcked:
    """Queues records in units with a producer and awaits every acknowledgement."""

    def __init__(
        self,
        *,
        timeout_s: float,
        backoff_max_s: float,
        on_transient: Callable[[BaseException], None],
        on_refusal: Callable[[BaseException], None],
    ) -> None:
        self._timeout_s = timeout_s
        self._backoff_max_s = backoff_max_s
        self._on_transient = on_transient
        self._on_refusal = on_refusal

    async def send(
        self, records: list[R], units: Callable[[list[R]], Iterator[tuple[list[R], Enqueue]]]
    ) -> None:
        """Queue ``records`` in the units ``units`` makes of them and await every ack; what
        fails for a while is sent again with backoff (from the first unit that could not be
        queued on), what is refused for good is raised together at the end."""
        rejected: list[tuple[R, Exception]] = []
        backoff = 0.1
        while records:
            failed: list[R] = []
            queued: list[tuple[list[R], asyncio.Future[Any]]] = []
            done = 0
            for unit, enqueue in units(records):
                try:
                    async with asyncio.timeout(self._timeout_s):
                        queued.append((unit, await enqueue()))
                except (KafkaError, TimeoutError) as exc:
                    # Not queued, nor anything after it: sent again next round (or refused).
                    self._sort_failure(exc, unit, failed, rejected)
                    failed.extend(records[done + len(unit) :])
                    break
                done += len(unit)
            for unit, fut in queued:
                try:
                    await fut
                except KafkaError as exc:
                    self._sort_failure(exc, unit, failed, rejected)
            records = failed
            if records:
                await asyncio.sleep(backoff)
                backoff = min(self._backoff_max_s, backoff * 2)
        if rejected:
            raise PublishRejectedError(rejected)

    def _sort_failure(
        self,
        exc: BaseException,
        unit: list[R],
        failed: list[R],
        rejected: list[tuple[R, Exception]],
    ) -> None:
        if is_refusal(exc):  # a right withdrawn is no record's fault: ends the process
            self._on_refusal(exc)
            raise exc
        if transient(exc):
            failed.extend(unit)
            self._on_transient(exc)
        else:
            assert isinstance(exc, Exception)
            rejected.extend((record, exc) for record in unit)
