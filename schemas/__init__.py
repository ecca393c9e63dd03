"""Wire format of molstream: Avro schemas, typed records, the codec and the two framings
(Avro single-object encoding, Schema Registry framing)."""

from schemas.codec import MOLECULE_CODEC, PREDICTION_CODEC, Codec, load_schema
from schemas.errors import (
    BadMagicError,
    CorruptBodyError,
    DecodeError,
    EmptyRecordError,
    IncompatibleSchemaError,
    NoRegistryError,
    UnknownSchemaError,
)
from schemas.records import Molecule, Prediction, Status

__all__ = [
    "MOLECULE_CODEC",
    "PREDICTION_CODEC",
    "BadMagicError",
    "Codec",
    "CorruptBodyError",
    "DecodeError",
    "EmptyRecordError",
    "IncompatibleSchemaError",
    "Molecule",
    "NoRegistryError",
    "Prediction",
    "Status",
    "UnknownSchemaError",
    "load_schema",
]
