"""Telling a record's framing from its first bytes and headers (pure, no I/O).

Two framings carry Avro on Kafka:

- Avro single-object encoding: ``0xC3 0x01`` + the writer schema's 8-byte fingerprint + body;
- Schema Registry framing, as confluent-kafka's ``AvroSerializer``, Java's
  ``KafkaAvroSerializer`` and Kafka Connect write it: ``0x00`` + the schema id (4 bytes,
  big-endian) + body; or, since Schema Registry 8, the body alone with the schema in a
  ``__value_schema_id`` header whose value is ``0x01`` + the schema's 16-byte GUID (or
  ``0x00`` + a 4-byte id, which confluent-kafka's deserializer also reads there).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from schemas.errors import BadMagicError, EmptyRecordError

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
REGISTRY_MAGIC = 0x00
GUID_MAGIC = 0x01
VALUE_SCHEMA_ID_HEADER = "__value_schema_id"
FINGERPRINT_LEN = 8
SCHEMA_ID_LEN = 4

SchemaRef = int | uuid.UUID
"""A registry's name for a schema: its integer id or its GUID."""

Writer = tuple[str, dict[str, Any]]
"""A registry writer schema: where it came from (for messages) and its parsed form."""


@dataclass(frozen=True, slots=True)
class SingleObject:
    """A value in Avro single-object encoding."""

    fingerprint: bytes
    body: bytes


@dataclass(frozen=True, slots=True)
class RegistryFramed:
    """A value whose writer schema a Schema Registry names (in the value or a header)."""

    ref: SchemaRef
    body: bytes


def describe_ref(ref: SchemaRef) -> str:
    """``schema id 7`` or ``schema guid …``, for messages."""
    return f"schema {'id' if isinstance(ref, int) else 'guid'} {ref}"


Framed = SingleObject | RegistryFramed
Headers = Iterable[tuple[str, bytes | None]]


def frame_of(value: bytes | None, headers: Headers = ()) -> Framed:
    """The framing of a record value; raises a :class:`schemas.errors.DecodeError`."""
    if not value:
        raise EmptyRecordError("record has no value")
    header = next((v for k, v in headers if k == VALUE_SCHEMA_ID_HEADER), None)
    if header is not None:
        return RegistryFramed(parse_schema_id_header(header), value)
    if value[:2] == SINGLE_OBJECT_MAGIC:
        if len(value) < 2 + FINGERPRINT_LEN:
            raise BadMagicError("value is shorter than the single-object header")
        return SingleObject(value[2 : 2 + FINGERPRINT_LEN], value[2 + FINGERPRINT_LEN :])
    if value[0] == REGISTRY_MAGIC:
        if len(value) < 1 + SCHEMA_ID_LEN:
            raise BadMagicError("value is shorter than the Schema Registry header")
        schema_id = int.from_bytes(value[1 : 1 + SCHEMA_ID_LEN], "big")
        return RegistryFramed(schema_id, value[1 + SCHEMA_ID_LEN :])
    raise BadMagicError(
        f"value starts with {value[:2].hex()!r}: neither Avro single-object encoding (c301) "
        "nor Schema Registry framing (00)"
    )


def parse_schema_id_header(header: bytes | None) -> SchemaRef:
    """The schema a ``__value_schema_id`` header names: ``0x01`` + GUID or ``0x00`` + id."""
    if header and header[0] == GUID_MAGIC and len(header) == 17:
        return uuid.UUID(bytes=header[1:])
    if header and header[0] == REGISTRY_MAGIC and len(header) == 1 + SCHEMA_ID_LEN:
        return int.from_bytes(header[1:], "big")
    shown = header.hex() if header is not None else "null"
    raise BadMagicError(
        f"header {VALUE_SCHEMA_ID_HEADER} is {shown!r}: neither 01 + a 16-byte GUID "
        "nor 00 + a 4-byte schema id"
    )


def registry_framed(schema_id: int, body: bytes) -> bytes:
    """``body`` in Schema Registry framing under ``schema_id``."""
    return bytes([REGISTRY_MAGIC]) + schema_id.to_bytes(SCHEMA_ID_LEN, "big") + body


def single_object(fingerprint: bytes, body: bytes) -> bytes:
    """``body`` in Avro single-object encoding under ``fingerprint``."""
    return SINGLE_OBJECT_MAGIC + fingerprint + body
