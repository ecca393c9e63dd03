"""Which dead letters go back, and as what (pure, no I/O).

A dead letter is its original record byte for byte plus ``molstream.error.*`` headers (see the
consumer's dead-letter output). Redriving one publishes the original key, value and headers
to the topic it came from, without the error headers and with ``molstream.redrive.count``
one higher. A record redriven ``max_redrives`` times stays where it is (the loop guard): its
cause was not fixed.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

ERROR_PREFIX = "molstream.error."
REDRIVE_COUNT = "molstream.redrive.count"
STAGES = ("decode", "model", "publish", "fetch")

Headers = Sequence[tuple[str, bytes | None]]


class Verdict(enum.StrEnum):
    """What becomes of one dead letter."""

    REDRIVEN = "redriven"
    FILTERED = "skipped_by_filter"
    LOOP_GUARD = "skipped_by_loop_guard"
    NO_TOPIC = "skipped_no_topic"
    """Neither a ``molstream.error.topic`` header nor ``--topic``: nowhere to send it."""


@dataclass(frozen=True, slots=True)
class Selection:
    """The dead letters an operator chose; an unset criterion matches every one."""

    stages: frozenset[str] = frozenset()
    reason: re.Pattern[str] | None = None
    """Searched in ``molstream.error.message``."""
    error_class: re.Pattern[str] | None = None
    """Matched against the whole ``molstream.error.class``."""
    since_ms: int | None = None
    until_ms: int | None = None
    """Record timestamps (of the dead letter), inclusive."""
    partitions: frozenset[int] = frozenset()
    """Of the original record."""
    from_offset: int | None = None
    to_offset: int | None = None
    """Offsets of the original record, inclusive."""
    max_redrives: int = 3


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    """What the rules read of a dead letter."""

    timestamp_ms: int
    headers: Headers

    def error(self, name: str) -> str | None:
        """The value of ``molstream.error.<name>`` as text, if present."""
        value = next((v for k, v in self.headers if k == ERROR_PREFIX + name), None)
        return None if value is None else value.decode("utf-8", "replace")

    def redrives(self) -> int:
        """How often it was redriven before; an unreadable count counts as past any guard."""
        value = next((v for k, v in self.headers if k == REDRIVE_COUNT), None)
        if value is None:
            return 0
        try:
            return max(0, int(value))
        except ValueError:
            return 2**31


def verdict(letter: DeadLetterView, chosen: Selection, topic: str | None) -> Verdict:
    """Whether ``letter`` goes back (to ``topic``, or the one it came from)."""
    if not _selected(letter, chosen):
        return Verdict.FILTERED
    if letter.redrives() >= chosen.max_redrives:
        return Verdict.LOOP_GUARD
    if topic is None and not letter.error("topic"):
        return Verdict.NO_TOPIC
    return Verdict.REDRIVEN


def _selected(letter: DeadLetterView, chosen: Selection) -> bool:
    if chosen.stages and letter.error("stage") not in chosen.stages:
        return False
    if chosen.reason is not None and not chosen.reason.search(letter.error("message") or ""):
        return False
    if chosen.error_class is not None and not chosen.error_class.fullmatch(
        letter.error("class") or ""
    ):
        return False
    if chosen.since_ms is not None and letter.timestamp_ms < chosen.since_ms:
        return False
    if chosen.until_ms is not None and letter.timestamp_ms > chosen.until_ms:
        return False
    return _in_range(letter, chosen)


def _in_range(letter: DeadLetterView, chosen: Selection) -> bool:
    partition, offset = _int(letter.error("partition")), _int(letter.error("offset"))
    if chosen.partitions and partition not in chosen.partitions:
        return False
    if chosen.from_offset is not None and (offset is None or offset < chosen.from_offset):
        return False
    return chosen.to_offset is None or (offset is not None and offset <= chosen.to_offset)


def _int(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def target_topic(letter: DeadLetterView, topic: str | None) -> str:
    """Where a redriven letter goes: ``topic`` if given, else the one it came from."""
    return topic or letter.error("topic") or ""


def redriven_headers(headers: Headers) -> list[tuple[str, bytes | None]]:
    """The original headers without the error headers, the redrive count one higher."""
    count = DeadLetterView(0, headers).redrives()
    kept = [
        (k, v or b"") for k, v in headers if not k.startswith(ERROR_PREFIX) and k != REDRIVE_COUNT
    ]
    return [*kept, (REDRIVE_COUNT, str(count + 1).encode())]
