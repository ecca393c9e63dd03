"""Dead letters: their error headers are always ours, and one the broker refuses is sent
again without its value, then without its own headers (an in-memory producer)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError

from consumer.reasons import DeadLetterStage
from consumer.sink.output import Output
from consumer.state.items import DeadLetter
from schemas.kafka import ProducerSettings


class RefusingProducer:
    """Acknowledges a record only when ``accept`` says so; refuses the rest for good."""

    def __init__(self, accept: Any) -> None:
        self.accept = accept
        self.sent: list[tuple[bytes | None, list[tuple[str, bytes]]]] = []

    async def send(
        self, topic: str, *, value: bytes | None, key: bytes | None, headers: list[Any]
    ) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.accept(value, headers):
            self.sent.append((value, headers))
            future.set_result(None)
        else:
            future.set_exception(MessageSizeTooLargeError())
        return future

    async def stop(self) -> None:
        pass


class Kafka(ProducerSettings):
    producer: Any = None

    async def started_producer(self) -> Any:
        return self.producer


def _letter() -> DeadLetter:
    headers = [("traceparent", b"00-abc"), ("molstream.error.stage", b"forged")]
    return DeadLetter("molecules", 1, 7, b"k", b"v" * 10, headers, DeadLetterStage.DECODE, "bad", 1)


async def _send(producer: RefusingProducer) -> None:
    async with Output(Kafka(producer=producer), output_topic="p", dlq_topic="d") as output:
        await output.dead_letters([_letter()])


def test_error_headers_a_record_arrived_with_are_replaced_by_ours() -> None:
    headers = _letter().kafka_headers()
    assert ("traceparent", b"00-abc") in headers
    stages = [v for k, v in headers if k == "molstream.error.stage"]
    assert stages == [b"decode"]


async def test_a_refused_dead_letter_goes_again_without_its_value() -> None:
    producer = RefusingProducer(lambda value, headers: value is None)
    await _send(producer)
    ((value, headers),) = producer.sent
    assert value is None and ("molstream.error.value_dropped", b"10") in headers
    assert ("traceparent", b"00-abc") in headers


async def test_then_without_its_own_headers_keeping_the_error_headers() -> None:
    def accept(value: bytes | None, headers: list[tuple[str, bytes]]) -> bool:
        return value is None and all(k.startswith("molstream.error.") for k, _ in headers)

    producer = RefusingProducer(accept)
    await _send(producer)
    ((value, headers),) = producer.sent
    keys = [k for k, _ in headers]
    assert value is None and "traceparent" not in keys
    assert ("molstream.error.headers_dropped", b"1") in headers
    assert ("molstream.error.offset", b"7") in headers
