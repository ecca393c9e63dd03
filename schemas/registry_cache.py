"""What is known of the writer schemas a registry was asked for: each admitted
(:mod:`schemas.admission`) once and kept by id and GUID, the unusable ones remembered, the
ones the registry does not have (or refuses to give) remembered for :data:`MISSING_TTL_S`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka.schema_registry import Schema

from schemas.admission import admit
from schemas.errors import DecodeError, IncompatibleSchemaError
from schemas.framing import SchemaRef, describe_ref

MISSING_TTL_S = 60.0
"""How long an id the registry answered "not found" (or another client error) for stays
unknown without asking again: records naming it cost one request a minute, not one each,
and a schema registered meanwhile is found within a minute."""


class WriterCache:
    """Writer schemas by reference, and why the ones that cannot be read cannot (for a
    while, if the registry may have them later). ``clock`` dates the "missing" entries."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._writers: dict[SchemaRef, dict[str, Any]] = {}
        self._unusable: dict[SchemaRef, DecodeError] = {}  # why a schema cannot be read
        self._missing: dict[SchemaRef, tuple[float, DecodeError]] = {}  # until when, why

    def get(self, ref: SchemaRef) -> dict[str, Any] | None:
        """The writer schema ``ref`` names if it is known. Raises the :class:`DecodeError`
        of one found unusable, or missing (for a while)."""
        unusable = self._unusable.get(ref)
        if unusable is not None:
            raise unusable.with_traceback(None)  # raised again and again: keep no frames
        missing = self._missing.get(ref)
        if missing is not None:
            until, error = missing
            if self._clock() < until:
                raise error.with_traceback(None)
            del self._missing[ref]
        return self._writers.get(ref)

    def remember(self, ref: SchemaRef, schema: Schema) -> dict[str, Any]:
        """``schema`` parsed and admitted, kept as the writer schema of ``ref``; raises
        (and remembers) the :class:`IncompatibleSchemaError` of one unfit to decode with."""
        try:
            parsed = _parse(schema, ref)
        except IncompatibleSchemaError as exc:
            self._unusable[ref] = exc
            raise
        self._writers[ref] = parsed
        return parsed

    def missing(self, ref: SchemaRef, error: DecodeError) -> None:
        """The registry did not give ``ref``: ``error`` it is, for :data:`MISSING_TTL_S`."""
        self._missing[ref] = (self._clock() + MISSING_TTL_S, error)


def _parse(schema: Schema, ref: SchemaRef) -> dict[str, Any]:
    """A registry's schema as a parsed, admitted Avro record schema (not Protobuf, JSON
    Schema, …, nor one :mod:`schemas.admission` refuses)."""
    kind = schema.schema_type or "AVRO"
    if kind != "AVRO":
        raise IncompatibleSchemaError(f"{describe_ref(ref)} is a {kind} schema, not Avro")
    if schema.references:
        raise IncompatibleSchemaError(
            f"{describe_ref(ref)} uses schema references, which molstream does not resolve"
        )
    return admit(schema.schema_str or "", describe_ref(ref))
