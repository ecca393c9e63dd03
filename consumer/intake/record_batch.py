"""A tolerant reader of Kafka record batches, format v2 (pure, no I/O).

aiokafka's own parser gives up on the first thing it cannot read (a header key that is not
UTF-8, a CRC mismatch, a truncated record) and takes the whole batch with it. This one reads
what can be read and says what could not: header keys stay bytes, a CRC mismatch is a flag,
a record that cannot be read ends the batch with a reason. Every length and count is checked
against the bytes that remain, so hostile input costs at most one pass over it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka.codec import gzip_decode, lz4_decode, snappy_decode, zstd_decode
from aiokafka.record.util import calc_crc32c

HEADER = struct.Struct(">qiibIhiqqqhii")
"""base offset, batch length, leader epoch, magic, CRC, attributes, last offset delta,
first timestamp, max timestamp, producer id, producer epoch, base sequence, record count."""
LOG_OVERHEAD = 12
"""Base offset and batch length: the batch length counts the bytes after them."""
CRC_START = 21
"""The CRC-32C covers the batch from its attributes on."""

CONTROL_FLAG = 0x20
LOG_APPEND_TIME_FLAG = 0x08
CODECS: dict[int, Callable[[bytes], bytes]] = {
    1: gzip_decode,
    2: snappy_decode,
    3: lz4_decode,
    4: zstd_decode,
}


class RecordBatchError(ValueError):
    """Raised when a record batch's header cannot be read (truncated, wrong magic)."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as it was written: header keys are bytes, not necessarily UTF-8."""

    offset: int
    timestamp: int
    """Milliseconds since the epoch (the batch's max timestamp for log-append time)."""
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[bytes, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class RawBatch:
    """A record batch: the records that could be read and why the rest could not."""

    base_offset: int
    last_offset_delta: int
    attributes: int
    crc_ok: bool
    records: tuple[RawRecord, ...]
    error: str | None
    """Why records past ``records`` could not be read; None when every record was read."""
    size: int
    """Bytes the batch takes, its log overhead included."""

    @property
    def next_offset(self) -> int:
        """The offset after the batch's last."""
        return self.base_offset + self.last_offset_delta + 1

    @property
    def is_control(self) -> bool:
        """Whether the batch holds transaction markers, not data."""
        return bool(self.attributes & CONTROL_FLAG)


class _Reader:
    """A cursor over bytes; every read is checked against what remains."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varint(self, max_bytes: int = 10) -> int:
        result = shift = 0
        for _ in range(max_bytes):
            if self.pos >= len(self.data):
                raise RecordBatchError("truncated varint")
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (result >> 1) ^ -(result & 1)
            shift += 7
        raise RecordBatchError("varint too long")

    def take(self, length: int) -> bytes | None:
        """``length`` bytes (-1: null)."""
        if length == -1:
            return None
        if length < 0 or length > len(self.data) - self.pos:
            raise RecordBatchError(f"length {length} exceeds the {self.remaining} bytes left")
        chunk = self.data[self.pos : self.pos + length]
        self.pos += length
        return chunk

    def take_bytes(self, length: int) -> bytes:
        chunk = self.take(length)
        if chunk is None:
            raise RecordBatchError("null where bytes are required")
        return chunk

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos


def read_batches(data: bytes) -> list[RawBatch]:
    """The batches of a fetch response's record set; a partial batch at the end (the broker
    cuts responses at the fetch size) is left out. Raises :class:`RecordBatchError` when a
    batch header cannot be read."""
    batches = []
    pos = 0
    while len(data) - pos >= LOG_OVERHEAD:
        (length,) = struct.unpack_from(">i", data, pos + 8)
        if length < 0:
            raise RecordBatchError(f"negative batch length {length} at byte {pos}")
        if pos + LOG_OVERHEAD + length > len(data):
            break
        batch = read_batch(data[pos : pos + LOG_OVERHEAD + length])
        batches.append(batch)
        pos += batch.size
    return batches


def read_batch(data: bytes) -> RawBatch:
    """One batch (``data`` holds exactly it, or starts with it)."""
    if len(data) < HEADER.size:
        raise RecordBatchError(f"{len(data)} bytes cannot hold a batch header")
    (base, length, _, magic, crc, attributes, delta, first_ts, max_ts, *_, count) = (
        HEADER.unpack_from(data)
    )
    if magic != 2:
        raise RecordBatchError(f"record format v{magic} is not read (only v2)")
    size = LOG_OVERHEAD + length
    if length < HEADER.size - LOG_OVERHEAD or size > len(data):
        raise RecordBatchError(f"batch length {length} does not fit {len(data)} bytes")
    crc_ok = calc_crc32c(data[CRC_START:size]) == crc
    body = data[HEADER.size : size]
    codec = attributes & 0x07
    records: list[RawRecord] = []
    error = None
    try:
        if codec:
            if codec not in CODECS:
                raise RecordBatchError(f"unknown compression type {codec}")
            body = CODECS[codec](body)
        reader = _Reader(body)
        stamp = max_ts if attributes & LOG_APPEND_TIME_FLAG else None
        for _ in range(max(0, count)):
            records.append(_read_record(reader, base, first_ts, stamp))
        if count < 0:
            error = f"negative record count {count}"
    except RecordBatchError as exc:
        error = f"record {len(records)} of {count}: {exc}"
    except Exception as exc:  # a codec's own error on garbage: the records cannot be read
        error = f"cannot decompress (codec {codec}): {type(exc).__name__}: {exc}"
    return RawBatch(base, delta, attributes, crc_ok, tuple(records), error, size)


def _read_record(reader: _Reader, base: int, first_ts: int, stamp: int | None) -> RawRecord:
    length = reader.varint(5)
    if length < 0 or length > reader.remaining:
        raise RecordBatchError(f"record length {length} exceeds the {reader.remaining} left")
    record = _Reader(reader.take_bytes(length))
    record.take_bytes(1)  # attributes: unused in v2
    timestamp_delta = record.varint()
    offset_delta = record.varint(5)
    key = record.take(record.varint(5))
    value = record.take(record.varint(5))
    count = record.varint(5)
    if count < 0 or count > record.remaining:
        raise RecordBatchError(f"header count {count} exceeds the {record.remaining} bytes")
    headers = []
    for _ in range(count):
        name = record.take_bytes(record.varint(5))
        headers.append((name, record.take(record.varint(5))))
    return RawRecord(
        offset=base + offset_delta,
        timestamp=stamp if stamp is not None else first_ts + timestamp_delta,
        key=key,
        value=value,
        headers=tuple(headers),
    )
