"""Avro single-object encoding of the records, with schema resolution on read.

A value is ``0xC3 0x01`` + the 8-byte little-endian CRC-64-AVRO fingerprint of the writer
schema + the Avro binary body. The fingerprint tells the reader which schema version wrote
the record, so records from older publishers resolve to the current reader schema.
"""

from __future__ import annotations

import dataclasses
import io
import json
from importlib import resources
from typing import Any, Generic, TypeVar

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas.errors import (
    BadMagicError,
    CorruptBodyError,
    EmptyRecordError,
    UnknownSchemaError,
)
from schemas.records import Molecule, Prediction, Status

MAGIC = b"\xc3\x01"
_HEADER_LEN = len(MAGIC) + 8

R = TypeVar("R")


def load_schema(name: str) -> dict[str, Any]:
    """Parse ``schemas/<name>.avsc`` shipped with the package."""
    text = resources.files("schemas").joinpath(f"{name}.avsc").read_text()
    parsed = fastavro.parse_schema(json.loads(text))
    assert isinstance(parsed, dict)  # a record schema
    return parsed


def schema_fingerprint(schema: dict[str, Any]) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint, in the byte order single-object encoding uses."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


class Codec(Generic[R]):
    """Encodes with the current schema; decodes any known version into the current one."""

    def __init__(
        self,
        record_type: type[R],
        schema: dict[str, Any],
        older_schemas: tuple[dict[str, Any], ...] = (),
    ) -> None:
        self._record_type = record_type
        self._schema = schema
        self._fingerprint = schema_fingerprint(schema)
        self._writers = {schema_fingerprint(s): s for s in (schema, *older_schemas)}

    @property
    def fingerprint(self) -> bytes:
        """Fingerprint of the schema this codec writes."""
        return self._fingerprint

    def encode(self, record: R) -> bytes:
        """Serialize ``record`` with the current schema."""
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(self._fingerprint)
        fastavro.schemaless_writer(buf, self._schema, self._to_avro(record))
        return buf.getvalue()

    def encode_with(self, schema: dict[str, Any], datum: dict[str, Any]) -> bytes:
        """Serialize a raw datum with another (e.g. older) schema, as an old publisher would."""
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(schema_fingerprint(schema))
        fastavro.schemaless_writer(buf, schema, dict(datum))
        return buf.getvalue()

    def decode(self, value: bytes | None) -> R:
        """Deserialize ``value``; raises a :class:`schemas.errors.DecodeError` subclass."""
        if not value:
            raise EmptyRecordError("record has no value")
        if value[:2] != MAGIC:
            raise BadMagicError(f"value starts with {value[:2].hex()!r}, not c301")
        if len(value) < _HEADER_LEN:
            raise BadMagicError("value is shorter than the single-object header")
        writer = self._writers.get(value[2:_HEADER_LEN])
        if writer is None:
            raise UnknownSchemaError(f"unknown schema fingerprint {value[2:_HEADER_LEN].hex()}")
        body = io.BytesIO(value[_HEADER_LEN:])
        try:
            datum = fastavro.schemaless_reader(body, writer, self._schema)
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise CorruptBodyError(f"{type(exc).__name__}: {exc}") from exc
        if body.tell() != len(value) - _HEADER_LEN:
            raise CorruptBodyError("trailing bytes after the Avro body")
        try:
            return self._from_avro(datum)
        except (TypeError, ValueError) as exc:
            raise CorruptBodyError(f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _to_avro(record: R) -> dict[str, Any]:
        datum = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}  # type: ignore[arg-type]
        return {k: v.value if isinstance(v, Status) else v for k, v in datum.items()}

    def _from_avro(self, datum: Any) -> R:
        if self._record_type is Prediction:
            datum = {**datum, "status": Status(datum["status"])}
        return self._record_type(**datum)


MOLECULE_CODEC: Codec[Molecule] = Codec(
    Molecule, load_schema("molecule"), (load_schema("molecule.v1"),)
)
PREDICTION_CODEC: Codec[Prediction] = Codec(Prediction, load_schema("prediction"))
