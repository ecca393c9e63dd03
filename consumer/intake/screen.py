"""The bounds a fetched record must keep before anything reads it (pure, no I/O).

Everything in a record is untrusted (DESIGN.md, "Trust boundary"): its sizes are checked on
arrival, so a record over a bound is a dead letter before any decode, and the in-flight
window is bounded in bytes as well as records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from consumer.input_settings import RecordLimits
from schemas.errors import TooLargeError


class FetchedRecord(Protocol):
    """What the screen reads of a fetched record (aiokafka's ``ConsumerRecord``)."""

    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


def size_of(record: FetchedRecord) -> int:
    """Bytes of a record's key, value and headers together (a header key counts its
    characters)."""
    size = len(record.key or b"") + len(record.value or b"")
    for key, value in record.headers or ():
        size += len(key) + len(value or b"")
    return size


def refusal(record: FetchedRecord, size: int, limits: RecordLimits) -> TooLargeError | None:
    """Why a record of ``size`` bytes (:func:`size_of`) is over a bound, or None."""
    if size > limits.max_record_bytes:
        return TooLargeError(
            f"record of {size} bytes: over --max-record-bytes {limits.max_record_bytes}"
        )
    key = len(record.key or b"")
    if key > limits.max_key_bytes:
        return TooLargeError(f"key of {key} bytes: over --max-id-length {limits.max_key_bytes}")
    headers = record.headers or ()
    if len(headers) > limits.max_header_count:
        return TooLargeError(
            f"{len(headers)} headers: over --max-header-count {limits.max_header_count}"
        )
    header_bytes = sum(len(k) + len(v or b"") for k, v in headers)
    if header_bytes > limits.max_header_bytes:
        return TooLargeError(
            f"headers of {header_bytes} bytes: over --max-header-bytes {limits.max_header_bytes}"
        )
    return None
