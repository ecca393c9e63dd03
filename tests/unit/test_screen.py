"""The screen: a fetched record over a size bound is refused before any decode (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from consumer.input_settings import RecordLimits
from consumer.intake.screen import refusal, size_of
from consumer.settings import ConsumerSettings

LIMITS = RecordLimits(
    max_record_bytes=100, max_key_bytes=8, max_header_count=2, max_header_bytes=30
)


@dataclass
class Record:
    key: bytes | None = b"m1"
    value: bytes | None = b"v" * 10
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def test_a_record_within_every_bound_passes() -> None:
    record = Record(headers=[("traceparent", b"00-abc")])
    assert size_of(record) == 2 + 10 + 11 + 6
    assert refusal(record, size_of(record), LIMITS) is None


@pytest.mark.parametrize(
    ("record", "names"),
    [
        (Record(value=b"v" * 99), "over --max-record-bytes 100"),
        (Record(key=b"k" * 9), "key of 9 bytes: over --max-id-length 8"),
        (Record(headers=[("a", b"")] * 3), "3 headers: over --max-header-count 2"),
        (Record(headers=[("a", b"x" * 30)]), "headers of 31 bytes: over --max-header-bytes 30"),
    ],
)
def test_each_bound_refuses_with_a_reason_naming_its_setting(record: Record, names: str) -> None:
    refused = refusal(record, size_of(record), LIMITS)
    assert refused is not None and refused.reason == "too_large" and names in str(refused)


@given(
    key=st.none() | st.binary(max_size=20),
    value=st.none() | st.binary(max_size=150),
    headers=st.lists(st.tuples(st.text(max_size=10), st.binary(max_size=20)), max_size=4),
)
def test_the_screen_never_raises_and_refuses_exactly_what_is_over(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
) -> None:
    record = Record(key, value, headers)
    size = size_of(record)
    over = (
        size > 100
        or len(key or b"") > 8
        or len(headers) > 2
        or sum(len(k) + len(v) for k, v in headers) > 30
    )
    assert (refusal(record, size, LIMITS) is not None) == over


@pytest.mark.parametrize(
    ("values", "first", "second"),
    [
        (
            {"max_partition_fetch_bytes": 2_000_000, "fetch_max_bytes": 1_000_000},
            "--max-partition-fetch-bytes",
            "--fetch-max-bytes",
        ),
        (
            {"max_in_flight_bytes": 1000, "max_record_bytes": 2000},
            "--max-in-flight-bytes",
            "--max-record-bytes",
        ),
    ],
    ids=["partition-over-fetch", "window-below-record"],
)
def test_contradictory_byte_bounds_are_refused_naming_both_options(
    values: dict[str, int], first: str, second: str
) -> None:
    with pytest.raises(ValidationError, match=f"{first} .* {second}"):
        ConsumerSettings(**values)  # type: ignore[arg-type]


def test_the_default_bounds_are_kafkas_and_reach_the_screen() -> None:
    s = ConsumerSettings()
    assert (s.max_record_bytes, s.max_partition_fetch_bytes) == (1 << 20, 1 << 20)
    assert s.fetch_max_bytes == 50 << 20 and s.max_in_flight_bytes == 256 << 20
    assert s.record_limits.max_key_bytes == s.max_id_length
