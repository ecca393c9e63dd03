"""Record batches of our own bytes (header keys any bytes), and producing one as is.

aiokafka's producer only takes header keys as strings; Go, C and librdkafka producers can write
any bytes. These helpers write Kafka's record batch v2 by hand (correct CRC-32C) and send it in
a ProduceRequest through aiokafka's client, so a test can put such a record on a topic.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.util import calc_crc32c
from hypothesis import strategies as st

from consumer.intake.record_batch import HEADER


@dataclass(frozen=True)
class Rec:
    """One record to write: any bytes anywhere."""

    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[bytes, bytes | None]] = field(default_factory=tuple)


def records(max_bytes: int = 50) -> st.SearchStrategy[Rec]:
    """Random records: keys, values and header values bytes or null, header keys any bytes."""
    maybe = st.none() | st.binary(max_size=max_bytes)
    header = st.tuples(st.binary(max_size=8), st.none() | st.binary(max_size=8))
    return st.builds(Rec, key=maybe, value=maybe, headers=st.lists(header, max_size=4))


def _varint(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = zigzag & 0x7F
        zigzag >>= 7
        if zigzag:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _sized(data: bytes | None) -> bytes:
    return _varint(-1) if data is None else _varint(len(data)) + data


def encode_record(delta: int, rec: Rec) -> bytes:
    """One record of a batch, ``delta`` its offset delta (timestamp delta 0)."""
    body = b"\x00" + _varint(0) + _varint(delta) + _sized(rec.key) + _sized(rec.value)
    body += _varint(len(rec.headers)) + b"".join(_sized(k) + _sized(v) for k, v in rec.headers)
    return _varint(len(body)) + body


def encode_batch(records: Sequence[Rec], base_offset: int = 0, timestamp_ms: int = 0) -> bytes:
    """An uncompressed v2 batch of ``records`` with a correct CRC-32C."""
    body = b"".join(encode_record(i, r) for i, r in enumerate(records))
    last = len(records) - 1
    header = HEADER.pack(
        base_offset,
        HEADER.size - 12 + len(body),
        0,
        2,
        0,
        0,
        last,
        timestamp_ms,
        timestamp_ms,
        -1,
        -1,
        -1,
        len(records),
    )
    batch = bytearray(header + body)
    struct.pack_into(">I", batch, 17, calc_crc32c(bytes(batch[21:])))
    return bytes(batch)


async def produce_batch(bootstrap: str, tp: TopicPartition, batch: bytes) -> int:
    """Write ``batch`` as is to ``tp`` (acks=all); its base offset. Fails if the broker
    refused it."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await asyncio.wait_for(client.bootstrap(), 30)
    try:
        await asyncio.wait_for(client.add_topic(tp.topic), 30)
        leader = client.cluster.leader_for_partition(tp)
        request = ProduceRequest(None, -1, 30_000, [(tp.topic, [(tp.partition, batch)])])
        response = await asyncio.wait_for(client.send(leader, request), 30)
        ((_, ((_, error_code, base_offset, *_),)),) = response.topics
        assert error_code == 0, f"the broker refused the batch: error {error_code}"
        return int(base_offset)
    finally:
        await client.close()
