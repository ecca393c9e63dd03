"""Unit tests for consumer.intake.unreadable: getting past what aiokafka cannot read (pure)."""

from __future__ import annotations

import struct

from aiokafka import TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.errors import UnreadableRecordError
from consumer.intake.unreadable import Recovered, recover
from consumer.reasons import DeadLetterStage
from tests.fuzzing import examples
from tests.record_batches import Rec, encode_batch, records

TP = TopicPartition("molecules", 2)
BAD_KEY = b"\xff\xfetrace"


def fine(base: int, count: int) -> bytes:
    return encode_batch([Rec(b"k%d" % i, b"v%d" % i) for i in range(count)], base_offset=base)


def offsets(recovered: Recovered) -> list[tuple[int, str]]:
    taken = [(r.offset, "taken") for r in recovered.records]
    return sorted(taken + [(d.offset, "letter") for d in recovered.letters])


def test_readable_data_needs_no_recovery() -> None:
    assert recover(TP, fine(0, 3) + fine(3, 2), 1) is None


def test_a_bad_header_key_is_a_dead_letter_and_its_neighbours_are_taken() -> None:
    bad = encode_batch(
        [
            Rec(b"a", b"A"),
            Rec(b"b", b"\x00\xc3value", [(BAD_KEY, b"1"), (b"ok", b"2")]),
            Rec(b"c", b"C"),
        ],
        base_offset=3,
    )
    recovered = recover(TP, fine(0, 3) + bad + fine(6, 2), 1)
    assert recovered is not None
    assert offsets(recovered) == [
        (1, "taken"),
        (2, "taken"),
        (3, "taken"),
        (4, "letter"),
        (5, "taken"),
    ]
    assert recovered.resume_at == 6
    (letter,) = recovered.letters
    assert (letter.key, letter.value, letter.stage) == (
        b"b",
        b"\x00\xc3value",
        DeadLetterStage.FETCH,
    )
    assert letter.headers == (("\\xff\\xfetrace", b"1"), ("ok", b"2"))
    assert isinstance(letter.error, UnreadableRecordError)
    assert "UnicodeDecodeError" in str(letter.error) and "backslash" in str(letter.error)
    assert [r.headers for r in recovered.records][-1] == ()


def test_a_batch_with_a_wrong_crc_is_all_dead_letters() -> None:
    data = bytearray(fine(5, 3))
    data[17] ^= 0x01
    recovered = recover(TP, fine(0, 5) + bytes(data), 5)
    assert recovered is not None and recovered.resume_at == 8
    assert offsets(recovered) == [(5, "letter"), (6, "letter"), (7, "letter")]
    assert all("CRC" in str(d.error) for d in recovered.letters)
    assert [d.value for d in recovered.letters] == [b"v0", b"v1", b"v2"]


def test_records_that_cannot_be_read_are_one_dead_letter_naming_their_offsets() -> None:
    data = bytearray(fine(0, 4))
    struct.pack_into(">I", data, 17, 0)
    data[61 + 30 :] = b"\x7f" * (len(data) - 91)  # garble from the middle of record 1 on
    recovered = recover(TP, bytes(data), 0)
    assert recovered is not None and recovered.resume_at == 4
    assert [d.offset for d in recovered.letters][-1] <= 3
    assert "unreadable" in str(recovered.letters[-1].error)


def test_an_unreadable_batch_header_moves_one_offset_at_a_time() -> None:
    data = bytearray(fine(9, 2))
    data[16] = 1  # magic v1: aiokafka reads it as a legacy message and fails
    for position in (9, 10):
        recovered = recover(TP, bytes(data), position)
        assert recovered is not None and recovered.resume_at == position + 1
        (letter,) = recovered.letters
        assert letter.offset == position and letter.value is None
        assert "only v2" in str(letter.error) and "CorruptRecordException" in str(letter.error)


@settings(max_examples=examples(300))
@given(st.lists(st.lists(records(), min_size=1, max_size=5), min_size=1, max_size=4), st.data())
def test_every_offset_is_taken_or_a_dead_letter(
    batches: list[list[Rec]], data: st.DataObject
) -> None:
    """Random batches (header keys any bytes): nothing escapes but the result, and every
    offset from the position to the end of the failed batch is accounted for once."""
    total = sum(len(b) for b in batches)
    position = data.draw(st.integers(0, total - 1))
    raw, base, ends = b"", 0, []
    for batch in batches:
        if base + len(batch) > position:  # the broker answers from the batch holding it on
            raw += encode_batch(batch, base_offset=base)
        base += len(batch)
        ends.append(base)
    recovered = recover(TP, raw, position)
    if recovered is None:
        return
    assert recovered.resume_at in ends and recovered.resume_at > position
    assert [o for o, _ in offsets(recovered)] == list(range(position, recovered.resume_at))
