"""Avro single-object encoding of the records, with schema resolution on read.

A value is ``0xC3 0x01`` + the 8-byte little-endian CRC-64-AVRO fingerprint of the writer
schema + the Avro binary body. The fingerprint tells the reader which schema version wrote
the record, so records from older publishers resolve to the current reader schema. Both the
specification's fingerprint and the one Apache's Python ``avro`` computes are accepted
(:mod:`schemas.fingerprints`). The body functions serve the Schema Registry framing too.
"""

from __future__ import annotations

import dataclasses
import io
import json
from importlib import resources
from typing import Any, Generic, TypeVar

import fastavro
from fastavro.read import SchemaResolutionError

from schemas.errors import (
    BadMagicError,
    CorruptBodyError,
    IncompatibleSchemaError,
    UnknownSchemaError,
)
from schemas.fingerprints import fingerprints, spec_fingerprint
from schemas.framing import SINGLE_OBJECT_MAGIC, SingleObject, frame_of, single_object
from schemas.records import Molecule, Prediction, Status

MAGIC = SINGLE_OBJECT_MAGIC

R = TypeVar("R")


def schema_text(name: str) -> str:
    """The text of ``schemas/<name>.avsc`` shipped with the package (what a registry stores)."""
    return resources.files("schemas").joinpath(f"{name}.avsc").read_text()


def load_schema(name: str) -> dict[str, Any]:
    """Parse ``schemas/<name>.avsc`` shipped with the package."""
    return parse_schema(schema_text(name))


def parse_schema(text: str) -> dict[str, Any]:
    """A record schema from its JSON text; raises ``ValueError`` for anything else."""
    parsed = fastavro.parse_schema(json.loads(text))
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise ValueError("not an Avro record schema")
    return parsed


def schema_fingerprint(schema: dict[str, Any]) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint, in the byte order single-object encoding uses."""
    return spec_fingerprint(schema)


class Codec(Generic[R]):
    """Encodes with the current schema; decodes any known version into the current one."""

    def __init__(
        self,
        record_type: type[R],
        schema: dict[str, Any],
        older_schemas: tuple[dict[str, Any], ...] = (),
        *,
        text: str,
    ) -> None:
        self._record_type = record_type
        self._schema = schema
        self.text = text
        """The schema's JSON as shipped (docs included): what is registered."""
        self._fingerprint = schema_fingerprint(schema)
        self._writers = {fp: s for s in (schema, *older_schemas) for fp in fingerprints(s)}

    @property
    def fingerprint(self) -> bytes:
        """Fingerprint of the schema this codec writes."""
        return self._fingerprint

    @property
    def schema(self) -> dict[str, Any]:
        """The parsed schema this codec writes (for encoders that batch their own calls)."""
        return self._schema

    @property
    def name(self) -> str:
        """Full name of the record schema, e.g. ``molstream.Molecule``."""
        return str(self._schema["name"])

    def encode(self, record: R) -> bytes:
        """Serialize ``record`` with the current schema, in single-object encoding."""
        return single_object(self._fingerprint, self.encode_body(record))

    def encode_body(self, record: R) -> bytes:
        """The Avro binary body of ``record`` alone (no framing)."""
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, self._schema, self._to_avro(record))
        return buf.getvalue()

    def encode_with(self, schema: dict[str, Any], datum: dict[str, Any]) -> bytes:
        """Serialize a raw datum with another (e.g. older) schema, as an old publisher would."""
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema, dict(datum))
        return single_object(schema_fingerprint(schema), buf.getvalue())

    def decode(self, value: bytes | None) -> R:
        """Deserialize a single-object ``value``; raises a :class:`schemas.DecodeError`."""
        framed = frame_of(value)
        if not isinstance(framed, SingleObject):
            raise BadMagicError(f"value starts with {(value or b'')[:2].hex()!r}, not c301")
        return self.decode_single_object(framed)

    def decode_single_object(self, framed: SingleObject) -> R:
        """Deserialize a value already known to be in single-object encoding."""
        writer = self._writers.get(framed.fingerprint)
        if writer is None:
            raise UnknownSchemaError(f"unknown schema fingerprint {framed.fingerprint.hex()}")
        return self.decode_body(framed.body, writer)

    def decode_body(self, body: bytes, writer: dict[str, Any], source: str = "") -> R:
        """Deserialize an Avro body written with ``writer``, resolved to the current schema.

        ``source`` names where a writer schema from outside came from (a registry id): a
        writer that cannot resolve is then an :class:`IncompatibleSchemaError`.
        """
        buf = io.BytesIO(body)
        try:
            datum = fastavro.schemaless_reader(buf, writer, self._schema)
        except SchemaResolutionError as exc:
            if not source:
                raise CorruptBodyError(f"SchemaResolutionError: {exc}") from exc
            detail = str(exc).split(":", 1)[0]  # fastavro appends both schemas in full
            raise IncompatibleSchemaError(
                f"writer schema {writer.get('name', writer.get('type'))} ({source}) cannot "
                f"resolve to {self.name}: {detail}"
            ) from exc
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise CorruptBodyError(f"{type(exc).__name__}: {exc}") from exc
        if buf.tell() != len(body):
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


def _codec(record_type: type[R], name: str, *older: str) -> Codec[R]:
    older_schemas = tuple(load_schema(o) for o in older)
    return Codec(record_type, load_schema(name), older_schemas, text=schema_text(name))


MOLECULE_CODEC: Codec[Molecule] = _codec(Molecule, "molecule", "molecule.v1")
PREDICTION_CODEC: Codec[Prediction] = _codec(Prediction, "prediction")
