"""Unit tests of the outbox: concurrent batches' records leave together per partition, and a
refusal reaches only the batches whose records were refused."""

from __future__ import annotations

import asyncio

import pytest

from consumer.errors import PublishRejectedError
from consumer.sink.outbox import Outbox
from consumer.state.work_messages import Produced


def _records(name: str, n: int) -> list[Produced]:
    return [(f"{name}{i}".encode(), b"v", None) for i in range(n)]


async def test_what_arrives_while_a_send_is_out_leaves_together_in_the_next() -> None:
    sends: list[tuple[int, int]] = []
    release = asyncio.Event()

    async def send(partition: int, records: list[Produced]) -> None:
        sends.append((partition, len(records)))
        await release.wait()

    outbox = Outbox(send)
    first = asyncio.create_task(outbox.put({0: _records("a", 3), 1: _records("a", 1)}))
    await asyncio.sleep(0)
    later = [asyncio.create_task(outbox.put({0: _records(f"b{j}", 2)})) for j in range(5)]
    await asyncio.sleep(0)
    assert sorted(sends) == [(0, 3), (1, 1)], "one send per partition at a time"
    release.set()
    await asyncio.gather(first, *later)
    assert sorted(sends) == [(0, 3), (0, 10), (1, 1)], "the five waiting batches in one send"


async def test_a_refusal_fails_only_the_batch_whose_record_was_refused() -> None:
    bad = _records("bad", 1)
    good = _records("good", 2)
    gate = asyncio.Event()

    async def send(partition: int, records: list[Produced]) -> None:
        await gate.wait()
        refused = [(r, ValueError("too large")) for r in records if r[0].startswith(b"bad")]
        if refused:
            raise PublishRejectedError(refused)  # type: ignore[arg-type]

    outbox = Outbox(send)
    blocker = asyncio.create_task(outbox.put({0: _records("first", 1)}))
    await asyncio.sleep(0)
    bad_put = asyncio.create_task(outbox.put({0: bad}))
    good_put = asyncio.create_task(outbox.put({0: good}))
    await asyncio.sleep(0)
    gate.set()
    await blocker
    await good_put
    with pytest.raises(PublishRejectedError, match="1 record"):
        await bad_put


async def test_a_send_that_fails_otherwise_fails_every_caller_and_stop_is_safe_twice() -> None:
    async def send(partition: int, records: list[Produced]) -> None:
        raise RuntimeError("output is not started")

    outbox = Outbox(send)
    results = await asyncio.gather(
        outbox.put({0: _records("a", 1)}),
        outbox.put({0: _records("b", 1)}),
        return_exceptions=True,
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    await outbox.stop()
    await outbox.stop()


async def test_nothing_to_send_returns_at_once() -> None:
    async def send(partition: int, records: list[Produced]) -> None:
        raise AssertionError("not called")

    # At once: the call completes without suspending even once.
    with pytest.raises(StopIteration):
        Outbox(send).put({0: [], 3: []}).send(None)
