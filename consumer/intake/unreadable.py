"""What to do with a partition's fetched bytes that aiokafka cannot read (pure, no I/O).

aiokafka's fetcher (``PartitionRecords``) is the judge of what is readable: the same class,
C extension and settings (CRC checks, read_committed) as the consumer's own fetches, run over
the same bytes. Where it gives up, the batch it gave up in is read with our tolerant reader
(:mod:`consumer.intake.record_batch`) and every record of it from that offset on becomes either a
record to take in as usual or a dead letter:

- the record aiokafka failed on is a dead letter, whatever our reader makes of it;
- a batch whose CRC does not match cannot be trusted: all its records are dead letters;
- a later record of the batch is taken in when our reader reads it cleanly (header keys that
  are UTF-8), else it is a dead letter too; aiokafka cannot be asked about it, because it
  re-reads the whole batch from its first record whatever the position, and fails again;
- records that cannot be read at all are one dead letter naming the offsets they span.

The consumer then seeks to the end of that batch, so aiokafka's next fetch starts after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.consumer.fetcher import READ_COMMITTED, PartitionRecords
from aiokafka.record.memory_records import MemoryRecords

from consumer.errors import UnreadableRecordError
from consumer.intake.record_batch import RawBatch, RawRecord, RecordBatchError, read_batches
from consumer.reasons import DeadLetterStage
from consumer.state.items import DeadLetter


@dataclass(frozen=True, slots=True)
class FetchedRecord:
    """A record our reader read cleanly, shaped like aiokafka's ``ConsumerRecord``."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


@dataclass(slots=True)
class Recovered:
    """A partition's records up to the end of the batch aiokafka failed in."""

    tp: TopicPartition
    failure: str
    """What aiokafka raised."""
    resume_at: int
    """The offset to seek to: the end of the failed batch."""
    records: list[Any] = field(default_factory=list)
    """Records to take in as usual (aiokafka's, then ours), in offset order."""
    letters: list[DeadLetter] = field(default_factory=list)


def recover(
    tp: TopicPartition,
    data: bytes,
    position: int,
    aborted: Sequence[tuple[int, int]] | None = None,
    isolation_level: int = READ_COMMITTED,
) -> Recovered | None:
    """What the fetched ``data`` of ``tp`` (fetched at ``position``) holds when aiokafka
    cannot read it; None when it can."""
    parsed = PartitionRecords(
        tp, MemoryRecords(data), aborted, position, None, None, True, isolation_level
    )
    good = []
    try:
        good.extend(parsed)
        return None
    except Exception as exc:  # anything aiokafka's record parsing raises
        failure = f"{type(exc).__name__}: {exc}"
    failed_at: int = parsed.next_fetch_offset
    result = Recovered(tp, failure, failed_at + 1, records=good)
    try:
        batch = next((b for b in read_batches(data) if b.next_offset > failed_at), None)
    except RecordBatchError as exc:
        batch, failure = None, f"{failure}; {exc}"
    if batch is None:
        result.letters.append(_letter(tp, failed_at, None, f"{failure}; unreadable batch"))
        return result
    result.resume_at = max(batch.next_offset, failed_at + 1)
    _split(result, batch, [r for r in batch.records if r.offset >= failed_at], failed_at)
    return result


def _split(result: Recovered, batch: RawBatch, rest: list[RawRecord], failed_at: int) -> None:
    """The failed batch's records from ``failed_at`` on: records to take or dead letters."""
    tp, failure = result.tp, result.failure
    if not rest and batch.error is None:
        result.letters.append(_letter(tp, failed_at, None, f"{failure}; no record found"))
    for index, record in enumerate(rest):
        problems = _problems(record, batch)
        if index == 0:
            problems.insert(0, f"aiokafka could not read it ({failure})")
        if problems:
            result.letters.append(_letter(tp, record.offset, record, "; ".join(problems)))
        else:
            result.records.append(_clean(record))
    unread = rest[-1].offset + 1 if rest else failed_at
    if batch.error is not None and unread < batch.next_offset:
        last = batch.next_offset - 1
        reason = f"{failure}; offsets {unread}-{last} unreadable: {batch.error}"
        result.letters.append(_letter(tp, unread, None, reason))


def _problems(record: RawRecord, batch: RawBatch) -> list[str]:
    problems = [] if batch.crc_ok else ["the batch's CRC-32C does not match"]
    for index, (key, _) in enumerate(record.headers):
        if not _utf8(key):
            problems.append(f"header key {index} is not UTF-8 (carried backslash-escaped)")
    return problems


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _clean(record: RawRecord) -> FetchedRecord:
    headers = tuple((k.decode("utf-8"), v) for k, v in record.headers)
    return FetchedRecord(record.offset, record.timestamp, record.key, record.value, headers)


def _letter(tp: TopicPartition, offset: int, record: RawRecord | None, reason: str) -> DeadLetter:
    """A dead letter of what could be read; header keys that are not UTF-8 are carried
    backslash-escaped (a producer sends header keys as strings), values byte for byte."""
    headers = () if record is None else record.headers
    return DeadLetter(
        topic=tp.topic,
        partition=tp.partition,
        offset=offset,
        key=None if record is None else record.key,
        value=None if record is None else record.value,
        headers=tuple((k.decode("utf-8", "backslashreplace"), v or b"") for k, v in headers),
        stage=DeadLetterStage.FETCH,
        error=UnreadableRecordError(reason),
        attempts=0,
    )
