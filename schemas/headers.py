"""Which headers of an input record its output record carries (pure).

Everything the producer set travels on (W3C ``traceparent`` / ``tracestate``, correlation
ids), except molstream's own ``molstream.*`` headers (a record replayed from the dead-letter
topic must not come out marked as an error) and the input's ``__value_schema_id`` and
``__key_schema_id``, which name the input's schemas, not the output's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from schemas.framing import VALUE_SCHEMA_ID_HEADER

OWN_PREFIX = "molstream."
KEY_SCHEMA_ID_HEADER = "__key_schema_id"
_DROPPED = frozenset({VALUE_SCHEMA_ID_HEADER, KEY_SCHEMA_ID_HEADER})

V = TypeVar("V", bytes, bytes | None)


def carried_headers(headers: Iterable[tuple[str, V]]) -> list[tuple[str, V]]:
    """The headers to copy from an input record onto its output, in their order."""
    return [
        (key, value)
        for key, value in headers
        if not key.startswith(OWN_PREFIX) and key not in _DROPPED
    ]
