"""Unit tests for consumer.intake.record_batch: the tolerant record batch v2 reader (pure)."""

from __future__ import annotations

import struct

import pytest
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.intake.record_batch import RawBatch, RecordBatchError, read_batch, read_batches
from tests.fuzzing import examples
from tests.record_batches import Rec, encode_batch, records

HEADERS = [("trace", b"\x00\x01"), ("empty", b""), ("nothing", None)]


def built(compression: int = 0, base_offset: int = 0, count: int = 5) -> bytes:
    """A batch written by aiokafka's own builder."""
    builder = _DefaultRecordBatchBuilderPy(
        magic=2,
        compression_type=compression,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for i in range(count):
        key = None if i == 1 else f"k{i}".encode()
        value = None if i == 2 else bytes(range(i * 7 % 256)) * 3
        builder.append(i, timestamp=1_700_000_000_000 + i, key=key, value=value, headers=HEADERS)
    data = bytearray(builder.build())
    struct.pack_into(">q", data, 0, base_offset)  # the broker assigns the base offset
    return bytes(data)


@pytest.mark.parametrize(
    "compression", [0, 1, 2, 3, 4], ids=["none", "gzip", "snappy", "lz4", "zstd"]
)
def test_aiokafka_batches_round_trip(compression: int) -> None:
    (batch,) = read_batches(built(compression, base_offset=40))
    assert batch.crc_ok and batch.error is None and not batch.is_control
    assert (batch.base_offset, batch.next_offset) == (40, 45)
    assert [r.offset for r in batch.records] == [40, 41, 42, 43, 44]
    assert batch.records[1].key is None and batch.records[2].value is None
    assert batch.records[3].value == bytes(range(21)) * 3
    assert batch.records[4].timestamp == 1_700_000_000_004
    assert batch.records[0].headers == (
        (b"trace", b"\x00\x01"),
        (b"empty", b""),
        (b"nothing", None),
    )


def test_header_keys_stay_bytes() -> None:
    data = encode_batch([Rec(b"k", b"v", [(b"\xff\xfe", b"x")])], base_offset=7)
    (record,) = read_batch(data).records
    assert (record.offset, record.headers) == (7, ((b"\xff\xfe", b"x"),))


def test_a_wrong_crc_is_a_flag_not_an_error() -> None:
    data = bytearray(built())
    data[17] ^= 0xFF  # the CRC field itself
    batch = read_batch(bytes(data))
    assert not batch.crc_ok and len(batch.records) == 5


def test_several_batches_and_a_partial_one_at_the_end() -> None:
    data = built(base_offset=0) + built(base_offset=5)
    assert [b.base_offset for b in read_batches(data + data[:30])] == [0, 5]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00" * 20, "cannot hold a batch header"),
        (built()[:16] + b"\x01" + built()[17:], "only v2"),
        (built()[:8] + struct.pack(">i", -5) + built()[12:], "negative batch length"),
    ],
)
def test_unreadable_headers_are_the_readers_error(data: bytes, message: str) -> None:
    with pytest.raises(RecordBatchError, match=message):
        (read_batch if len(data) < 61 else read_batches)(data)


def test_every_truncation_is_reported() -> None:
    data = built(count=3)
    for end in range(len(data)):
        cut = struct.pack(">q", 0) + struct.pack(">i", max(0, end - 12)) + data[12:end]
        try:
            batch = read_batch(cut)
        except RecordBatchError:
            continue
        assert batch.error is not None or len(batch.records) == 3


def _holds_or_reports(batch: RawBatch, count: int) -> None:
    assert len(batch.records) == count or batch.error is not None


@given(st.lists(records(), min_size=1, max_size=8), st.integers(0, 2**40))
def test_random_batches_round_trip(batch: list[Rec], base: int) -> None:
    read = read_batch(encode_batch(batch, base_offset=base))
    assert read.crc_ok and read.error is None
    assert [(r.offset, r.key, r.value, list(r.headers)) for r in read.records] == [
        (base + i, r.key, r.value, [tuple(h) for h in r.headers]) for i, r in enumerate(batch)
    ]


@settings(max_examples=examples(300))
@given(st.lists(records(), min_size=1, max_size=5), st.data())
def test_garbled_batches_give_records_or_the_readers_error(
    batch: list[Rec], data: st.DataObject
) -> None:
    raw = bytearray(encode_batch(batch))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    try:
        batches = read_batches(bytes(raw))
    except RecordBatchError:
        return
    for read in batches:
        if read.crc_ok:  # the garbling missed what the CRC covers: all must be read
            _holds_or_reports(read, len(batch))
