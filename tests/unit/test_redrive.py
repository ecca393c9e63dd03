"""The redrive rules: which dead letters go back, as what, and the loop guard (pure)."""

from __future__ import annotations

import re

import pytest

from producer.redrive import (
    REDRIVE_COUNT,
    DeadLetterView,
    Selection,
    Verdict,
    redriven_headers,
    target_topic,
    verdict,
)


def _letter(
    stage: str = "model", cls: str = "BatchFailedError", ts: int = 1000, **extra: bytes
) -> DeadLetterView:
    headers = [
        ("traceparent", b"00-abc"),
        *((k.replace("_", "."), v) for k, v in extra.items()),
        ("molstream.error.stage", stage.encode()),
        ("molstream.error.class", cls.encode()),
        ("molstream.error.message", b"ValueError: chlorine not supported"),
        ("molstream.error.topic", b"molecules"),
        ("molstream.error.partition", b"2"),
        ("molstream.error.offset", b"41"),
    ]
    return DeadLetterView(ts, headers)


@pytest.mark.parametrize(
    ("chosen", "expected"),
    [
        (Selection(), Verdict.REDRIVEN),
        (Selection(stages=frozenset({"model"})), Verdict.REDRIVEN),
        (Selection(stages=frozenset({"decode", "fetch"})), Verdict.FILTERED),
        (Selection(reason=re.compile("chlorine")), Verdict.REDRIVEN),
        (Selection(reason=re.compile("^chlorine")), Verdict.FILTERED),
        (Selection(error_class=re.compile("Batch.*")), Verdict.REDRIVEN),
        (Selection(error_class=re.compile("Batch")), Verdict.FILTERED),  # the whole class
        (Selection(since_ms=1000, until_ms=1000), Verdict.REDRIVEN),
        (Selection(since_ms=1001), Verdict.FILTERED),
        (Selection(until_ms=999), Verdict.FILTERED),
        (Selection(partitions=frozenset({2})), Verdict.REDRIVEN),
        (Selection(partitions=frozenset({0, 1})), Verdict.FILTERED),
        (Selection(from_offset=41, to_offset=41), Verdict.REDRIVEN),
        (Selection(from_offset=42), Verdict.FILTERED),
        (Selection(to_offset=40), Verdict.FILTERED),
    ],
)
def test_each_filter_chooses_what_it_names(chosen: Selection, expected: Verdict) -> None:
    assert verdict(_letter(), chosen, None) is expected


def test_the_loop_guard_stops_a_record_redriven_max_redrives_times() -> None:
    chosen = Selection(max_redrives=3)
    assert verdict(_letter(molstream_redrive_count=b"2"), chosen, None) is Verdict.REDRIVEN
    assert verdict(_letter(molstream_redrive_count=b"3"), chosen, None) is Verdict.LOOP_GUARD
    assert verdict(_letter(molstream_redrive_count=b"x"), chosen, None) is Verdict.LOOP_GUARD
    # The filters first: a letter not chosen is counted as such, whatever its count.
    other = Selection(stages=frozenset({"decode"}), max_redrives=1)
    assert verdict(_letter(molstream_redrive_count=b"9"), other, None) is Verdict.FILTERED


def test_a_redriven_record_loses_its_error_headers_and_counts_one_more_redrive() -> None:
    letter = _letter(molstream_redrive_count=b"1")
    assert redriven_headers(letter.headers) == [("traceparent", b"00-abc"), (REDRIVE_COUNT, b"2")]
    assert redriven_headers(_letter().headers)[-1] == (REDRIVE_COUNT, b"1")


def test_it_goes_where_it_came_from_unless_told_and_nowhere_without_a_topic() -> None:
    letter = _letter()
    assert target_topic(letter, None) == "molecules"
    assert target_topic(letter, "molecules.retry") == "molecules.retry"
    bare = DeadLetterView(0, [("molstream.error.stage", b"fetch")])
    assert verdict(bare, Selection(), None) is Verdict.NO_TOPIC
    assert verdict(bare, Selection(), "molecules") is Verdict.REDRIVEN
